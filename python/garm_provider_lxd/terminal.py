"""Text made safe to print on a person's terminal: the one escaping rule of every output line.

Runner code writes the files `logs` prints and can set the config values `status` shows; pool
admins name spec keys and instances; LXD servers and builders answer with text of their own.
Escape sequences in any of it could retitle the window, plant links (OSC 8), clear the screen,
rewrite earlier lines (carriage return, cursor movement), ring the bell, or reorder and hide
what is shown (bidirectional overrides, zero-width and other invisible format characters).
Every such character is printed as a visible escape instead: `\\x1b`, `\\x9b`, `\\u202e`.
"""

from __future__ import annotations

# Invisible format characters that change how the text around them is shown: bidirectional
# marks, embeddings, overrides and isolates; zero-width spaces and joiners; line and paragraph
# separators; the word joiner and invisible operators; the byte order mark; interlinear
# annotation marks.
_FORMAT_CHARACTERS = (
    0x061C, 0x180E, *range(0x200B, 0x2010), 0x2028, 0x2029, *range(0x202A, 0x202F),
    *range(0x2060, 0x2065), *range(0x2066, 0x2070), 0xFEFF, *range(0xFFF9, 0xFFFC),
)  # fmt: skip
# C0 controls (ESC, BEL, CR, ...), DEL and the C1 controls (CSI U+009B, OSC U+009D, ...).
_CONTROLS = (*range(0x20), 0x7F, *range(0x80, 0xA0))
_ESCAPES: dict[int, str] = {
    **{code: f"\\x{code:02x}" for code in _CONTROLS},
    **{code: f"\\u{code:04x}" for code in _FORMAT_CHARACTERS},
}
_KEPT_IN_TEXT = {ord("\n"): "\n", ord("\t"): "\t"}
_MULTILINE = {**_ESCAPES, **_KEPT_IN_TEXT}


def for_terminal(text: str, *, multiline: bool = False) -> str:
    """text with control characters shown as escapes (newlines and tabs kept when multiline)."""
    return text.translate(_MULTILINE if multiline else _ESCAPES)


def decoded(data: bytes) -> str:
    """Bytes from an instance as text for a terminal (invalid UTF-8 replaced, controls escaped)."""
    return for_terminal(data.decode("utf-8", "replace"), multiline=True)
