"""Builders of valid records (as the codec takes and returns them) for integration and e2e tests."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from processors.audio.g711 import ulaw_encode
from processors.session import segment_id

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


def call_event(call_id: str, cid: int, kind: str, seq: int, **payload: Any) -> dict[str, Any]:
    """A CallEvent with payload type ``kind`` (CallStarted, CallEnded, CallHeld, ...), ``seq`` seconds after T0."""
    at = T0 + timedelta(seconds=seq)
    return {
        "event_id": f"{call_id}-{kind}-{seq}",
        "call_id": call_id,
        "cid": cid,
        "source": "TELNYX",
        "occurred_at": at,
        "received_at": at,
        "payload": (f"io.switchboard.calls.{kind}", payload),
        "raw": "{}",
        "attributes": {"stream_id": "s-1"},
    }


def tone(amplitude: float, frames: int, start: int = 0, rate: int = 8000, hz: float = 1000.0) -> np.ndarray:
    """A sine tone as int16 samples, continuing phase from sample ``start``."""
    n = np.arange(start, start + frames)
    return np.round(amplitude * np.sin(2 * math.pi * hz * n / rate)).astype(np.int16)


def audio_chunk(call_id: str, cid: int, sequence: int, amplitude: float, frames: int = 1600) -> dict[str, Any]:
    """A 200 ms mu-law chunk of a 1 kHz tone on the inbound track."""
    start = sequence * frames
    return {
        "call_id": call_id,
        "cid": cid,
        "track": "inbound",
        "role": "CUSTOMER",
        "codec": "PCMU",
        "sample_rate": 8000,
        "channels": 1,
        "sequence": sequence,
        "start_sample": start,
        "media_timestamp_ms": start // 8,
        "received_at": T0 + timedelta(milliseconds=start // 8),
        "payload": ulaw_encode(tone(amplitude, frames, start)),
    }


def sine_dbfs(amplitude: float) -> float:
    """RMS level of a sine of ``amplitude``, dBFS."""
    return 20 * math.log10(amplitude / math.sqrt(2) / 32768)


def level_segment(call_id: str, cid: int, sequence: int, rms_dbfs: float, frames: int = 1600) -> dict[str, Any]:
    """A LEVEL SpeechSegment of the customer's ``sequence``-th 200 ms interval, as the worker emits it."""
    start = sequence * frames
    return {
        "segment_id": segment_id(call_id, "customer", "LEVEL", start),
        "call_id": call_id,
        "cid": cid,
        "track": "customer",
        "role": "CUSTOMER",
        "kind": "LEVEL",
        "start_sample": start,
        "end_sample": start + frames,
        "sample_rate": 8000,
        "rms_dbfs": rms_dbfs,
        "peak_dbfs": rms_dbfs + 3.0,
        "speech_probability": None,
        "detector": "level-meter:2",
        "voiced_fraction": None,
    }
