"""The local blob store (atomic commit, nothing left behind on failure) and the PyAV audio probe."""

from __future__ import annotations

from pathlib import Path

import pytest

from producers.oliver.audio_probe import AudioInfo, probe
from producers.oliver.blobs import LocalBlobStore, safe_ext
from producers.oliver.errors import UnsupportedAudioError
from tests.unit.producers.test_oliver_framing import mp3_bytes, wav_bytes


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def test_committed_upload_lands_under_cid_and_pid(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "blobs")
    async with store.upload(7) as upload:
        await upload.write(b"abc")
        await upload.write(b"def")
        assert upload.size == 6
        assert upload.path.read_bytes() == b"abcdef"
        uri = await upload.commit(123, "WAV")
    assert uri == (tmp_path / "blobs" / "7" / "123.wav").as_uri()
    assert _files(tmp_path / "blobs") == ["7/123.wav"]
    assert (tmp_path / "blobs" / "7" / "123.wav").read_bytes() == b"abcdef"


async def _fail(store: LocalBlobStore, root: Path, *, commit: bool) -> None:
    async with store.upload(7) as upload:
        await upload.write(b"abc")
        if commit:
            await upload.commit(5, "mp3")
            assert _files(root) == ["7/5.mp3"]
        raise RuntimeError("kafka said no")


async def test_a_failed_upload_leaves_nothing_even_after_commit(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    with pytest.raises(RuntimeError, match="kafka said no"):
        await _fail(store, tmp_path, commit=False)
    with pytest.raises(RuntimeError, match="kafka said no"):
        await _fail(store, tmp_path, commit=True)
    async with store.upload(7) as upload:
        await upload.write(b"never committed")
    assert _files(tmp_path) == []


def test_safe_ext() -> None:
    assert [safe_ext(e) for e in ("WAV", ".mp3", "m4a", "", "../x", "verylongext", "wäv")] == [
        "wav",
        "mp3",
        "m4a",
        "bin",
        "bin",
        "bin",
        "bin",
    ]


def test_probe_wav_and_mp3(tmp_path: Path) -> None:
    wav = tmp_path / "a"
    wav.write_bytes(wav_bytes(24000, 2, rate=8000))
    assert probe(wav) == AudioInfo(format="wav", codec="pcm_s16le", samples=24000, sample_rate=8000, channels=2)
    mp3 = tmp_path / "b"
    mp3.write_bytes(mp3_bytes(2.0, 1, 16000))
    info = probe(mp3)
    assert (info.format, info.codec, info.sample_rate, info.channels, info.duration_s) == (
        "mp3",
        "mp3float",
        16000,
        1,
        2.0,
    )
    assert info.metadata() == {
        "duration": "2.0",
        "sample_rate": "16000",
        "channels": "1",
        "format": "mp3",
        "codec": "mp3float",
    }


def test_extension_prefers_the_uploaded_name_when_the_container_answers_to_it() -> None:
    mp4 = AudioInfo(format="mov,mp4,m4a,3gp,3g2,mj2", codec="aac", samples=1, sample_rate=8000, channels=1)
    assert (mp4.extension("call.M4A"), mp4.extension("call.wav"), mp4.extension("noext")) == ("m4a", "mov", "mov")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hello, this is not audio at all\n" * 20, "has no audio stream|not decodable audio"),
        (bytes(range(256)) * 40, "not decodable audio"),
        (wav_bytes(0, 1), "holds no decodable audio samples"),
    ],
)
def test_probe_refuses_what_is_not_audio(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x"
    path.write_bytes(content)
    with pytest.raises(UnsupportedAudioError, match=message) as caught:
        probe(path)
    assert str(tmp_path) not in str(caught.value)  # no server paths in client-facing messages
