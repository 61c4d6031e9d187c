"""Errors of the Telnyx ingestion edge: one base class, messages name the bad value."""

from __future__ import annotations


class TelnyxError(Exception):
    """Base of every error raised by ``producers.telnyx``."""


class FrameError(TelnyxError):
    """A media WebSocket frame is malformed: not JSON, wrong types, bad base64 or misaligned audio."""


class UnsupportedEncodingError(TelnyxError):
    """The ``start`` frame announces a media encoding whose packets cannot be stored as AudioChunks."""


class WebhookKeyError(TelnyxError):
    """The configured webhook signing key cannot be loaded or is not an Ed25519 private key."""
