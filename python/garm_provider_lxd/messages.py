"""Text that reaches an error line: URLs without credentials, one line of bounded length."""

from __future__ import annotations

MAX_LINE = 500  # characters of the whole stderr line GARM stores as a runner's fault text
ELLIPSIS = "\u2026"
REDACTED = "***"
# Where the authority (host and user information) of a URL in a message ends: a path, a query,
# a fragment, or a quote or bracket around the URL.
_AUTHORITY_END = "/?#'\"<>`\\ "
# Where a URL in a message ends.
_URL_END = "'\"<>`\\ "


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
    from .terminal import for_terminal

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
