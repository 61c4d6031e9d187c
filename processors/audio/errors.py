"""Errors of the audio layer; each names the codec (or file) and the offending size or value."""


class AudioError(Exception):
    """Base of every audio decoding/measuring error."""


class UnsupportedCodecError(AudioError):
    """The codec is known to the schema but has no decoder here (yet), or is unknown."""


class MalformedAudioError(AudioError):
    """The payload cannot be audio of the announced codec/channels (e.g. odd byte count for L16)."""


class TruncatedAudioError(MalformedAudioError):
    """The stream or file ends inside a sample, frame or header; names how many bytes are missing or left."""


class CodecMismatchError(MalformedAudioError):
    """The bytes cannot be the declared codec (e.g. MP3 without frame sync, a RIFF header declared as L16)."""


class AudioFileError(AudioError):
    """An uploaded file cannot be decoded; the message names the file and the reason."""


class AudioStateError(AudioError):
    """A serialised decoder/resampler/detector state is invalid, or a finished stream was fed again."""
