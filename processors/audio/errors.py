"""Errors of the audio layer; each names the codec and the offending size or value."""


class AudioError(Exception):
    """Base of every audio decoding/measuring error."""


class UnsupportedCodecError(AudioError):
    """The codec is known to the schema but has no decoder here (yet), or is unknown."""


class MalformedAudioError(AudioError):
    """The payload cannot be audio of the announced codec/channels (e.g. odd byte count for L16)."""
