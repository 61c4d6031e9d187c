"""Errors of the call analytics; each message names the role, the time (ms) or the value at fault."""

from __future__ import annotations


class AnalyticsError(Exception):
    """Base of every call-analytics error."""


class InvalidInputError(AnalyticsError):
    """An input is malformed on its own: negative or reversed times, unknown kind, bad config."""


class OutOfOrderError(AnalyticsError):
    """An input contradicts what was already accepted (overlapping segments, a time already final)."""


class IllegalTransitionError(AnalyticsError):
    """The input is not allowed in the current state (resume while not on hold, input after the call ended)."""


class NotFinalError(AnalyticsError):
    """A call-level result was asked of a call that has not ended yet."""
