"""Text from instances, made safe to print on a person's terminal."""

from __future__ import annotations

# Runner code writes the files `logs` prints and can set the config values `status` shows:
# escape sequences in them could retitle the window, rewrite earlier lines (carriage return,
# cursor movement), or reorder what is shown (bidirectional overrides).
_BIDI_CONTROLS = (*range(0x202A, 0x202F), *range(0x2066, 0x206A))
_ESCAPES: dict[int, str] = {
    **{code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))},
    **{code: f"\\u{code:04x}" for code in _BIDI_CONTROLS},
}
_KEPT_IN_TEXT = {ord("\n"): "\n", ord("\t"): "\t"}


def for_terminal(text: str, *, multiline: bool = False) -> str:
    """text with control characters shown as escapes (newlines and tabs kept when multiline)."""
    table = {**_ESCAPES, **_KEPT_IN_TEXT} if multiline else _ESCAPES
    return text.translate(table)


def decoded(data: bytes) -> str:
    """Bytes from an instance as text for a terminal (invalid UTF-8 replaced, controls escaped)."""
    return for_terminal(data.decode("utf-8", "replace"), multiline=True)
