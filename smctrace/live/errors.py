"""Errors of the live-capture backend."""

from __future__ import annotations

from smctrace.frame import CaptureError


class LiveError(CaptureError):
    """A problem that stops live capture; the message is one line a user can act on."""
