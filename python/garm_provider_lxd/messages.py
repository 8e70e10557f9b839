"""Text that reaches a person: the one escaping rule of every line printed for one, and error
lines (URLs without credentials, one line of bounded length).

Runner code writes the files `logs` prints and can set the config values `status` shows; pool
admins name spec keys and instances; LXD servers and builders answer with text of their own.
Escape sequences in any of it could retitle the window, plant links (OSC 8), clear the screen,
rewrite earlier lines (carriage return, cursor movement), ring the bell, or reorder and hide
what is shown (bidirectional overrides, zero-width and other invisible format characters).
for_terminal prints every such character as a visible escape instead: `\\x1b`, `\\x9b`,
`\\u202e`. It lives here, not with the operator commands, because every stderr line of the
GARM commands goes through it too (one_line).
"""

from __future__ import annotations

MAX_LINE = 500  # characters of the whole stderr line GARM stores as a runner's fault text
ELLIPSIS = "\u2026"
REDACTED = "***"
# Where the authority (host and user information) of a URL in a message ends: a path, a query,
# a fragment, or a quote or bracket around the URL.
_AUTHORITY_END = "/?#'\"<>`\\ "
# Where a URL in a message ends.
_URL_END = "'\"<>`\\ "
# Invisible format characters that change how the text around them is shown: bidirectional
# marks, embeddings, overrides and isolates; zero-width spaces and joiners; line and paragraph
# separators; the word joiner and invisible operators; the byte order mark; interlinear
# annotation marks.
_FORMAT_CHARACTERS = (
    (0x061C, 0x061D), (0x180E, 0x180F), (0x200B, 0x2010), (0x2028, 0x202F), (0x2060, 0x2065),
    (0x2066, 0x2070), (0xFEFF, 0xFF00), (0xFFF9, 0xFFFC),
)  # fmt: skip
# C0 controls (ESC, BEL, CR, ...), DEL and the C1 controls (CSI U+009B, OSC U+009D, ...).
_CONTROLS = ((0x00, 0x20), (0x7F, 0xA0))
# translate's tables (single-line, multiline), built on the first escape: the GARM commands
# import this module on every run and print nothing for a person when they succeed.
_TABLES: list[dict[int, str]] = []


def for_terminal(text: str, *, multiline: bool = False) -> str:
    """text with control characters shown as escapes (newlines and tabs kept when multiline)."""
    # Every character escaped is one str.isprintable calls unprintable (categories Cc, Cf, Zl,
    # Zp): printable text, the common case, is returned as it is.
    if text.isprintable():
        return text
    if not _TABLES:
        escapes = {code: f"\\x{code:02x}" for low, high in _CONTROLS for code in range(low, high)}
        escapes.update(
            (code, f"\\u{code:04x}")
            for low, high in _FORMAT_CHARACTERS
            for code in range(low, high)
        )
        _TABLES.extend((escapes, {**escapes, ord("\n"): "\n", ord("\t"): "\t"}))
    return text.translate(_TABLES[multiline])


def redact_url(text: str) -> str:
    """Cut user information, query strings and fragments out of every URL in text."""
    pieces = text.split("://")
    return "://".join([pieces[0], *(_redact_after_scheme(piece) for piece in pieces[1:])])


def _redact_after_scheme(piece: str) -> str:
    # piece is what follows one "://", up to the next one.
    end = _first(piece, _AUTHORITY_END, 0)
    at = piece.rfind("@", 0, end)
    if at >= 0:
        piece = REDACTED + piece[at:]
        end += len(REDACTED) - at
    token_end = _first(piece, _URL_END, end)
    query = min(_first(piece, "?", end, token_end), _first(piece, "#", end, token_end))
    if query >= token_end:
        return piece
    return piece[: query + 1] + REDACTED + piece[token_end:]


def _first(text: str, chars: str, start: int, stop: int = -1) -> int:
    # Index of the first of chars in text[start:stop], or stop (the end of text by default).
    stop = len(text) if stop < 0 else stop
    return min((i for i in (text.find(c, start, stop) for c in chars) if i >= 0), default=stop)


def printable(value: str) -> str:
    """A value from outside, fit for a one-line message (escaped when not printable)."""
    return value if value.isprintable() else ascii(value)


def one_line(message: str, limit: int) -> str:
    """message on one line of at most limit characters, URLs redacted, controls escaped."""
    text = " ".join(message.split())
    if len(text) > 4 * limit:
        # Redact only a head of the text, cut between words so that no URL is cut before the
        # end of its user information; a head that is one word is cut before any URL in it.
        head = text[: 4 * limit]
        space = head.rfind(" ")
        text = (head[:space] if space > 0 else head.split("://", 1)[0]) + ELLIPSIS
    # Redacted before escaping: an escape's backslash would end a URL before its password.
    text = for_terminal(redact_url(text))
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def error_line(exc: BaseException, limit: int) -> str:
    """An exception's text by one_line's rule, or its class name when it has none."""
    return one_line(str(exc), limit) or type(exc).__name__
