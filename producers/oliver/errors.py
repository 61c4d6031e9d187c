"""Errors of the Oliver API. Each carries the HTTP status it is answered with, in Oliver's error shape."""

from __future__ import annotations


class OliverError(Exception):
    """Base of every Oliver API error; answered as ``{"code": status, "message": str(error)}``."""

    status = 400


class BadRequestError(OliverError):
    """A parameter, the multipart body or the uploaded audio is not acceptable."""


class UnauthorizedError(OliverError):
    """No ``X-Auth-Token`` was presented."""

    status = 401


class ForbiddenError(OliverError):
    """The token is not the key of the tenant named in the path."""

    status = 403


class PayloadTooLargeError(OliverError):
    """The upload (or a WebSocket frame) is larger than the configured limit."""

    status = 413


class UnsupportedAudioError(OliverError):
    """The upload is not decodable audio."""

    status = 415


class FramingError(OliverError):
    """Streamed audio does not match its announced format (bad WAV header, no MPEG frames, channel mismatch)."""
