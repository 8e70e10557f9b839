"""Bytes from instances, made safe to print on a terminal (by messages.for_terminal's rule)."""

from __future__ import annotations

from ..messages import for_terminal


def decoded(data: bytes) -> str:
    """Bytes from an instance as text for a terminal (invalid UTF-8 replaced, controls escaped)."""
    return for_terminal(data.decode("utf-8", "replace"), multiline=True)
