"""CA certificate bundles: PEM blocks found as Go's encoding/pem finds them, in linear time."""

from __future__ import annotations

from .specs import strict_b64decode

_BEGIN = b"-----BEGIN "
_END = b"-----END "
_DASHES = b"-----"
_BASE64_SPACE = b" \t\r\n"  # what Go's pem.Decode and base64 decoder skip inside a body


def certificate_bundle_problem(data: bytes) -> str:
    """Say what is wrong with a PEM certificate bundle; empty when it is one."""
    # Like pem.Decode, a block starts at a line that begins with "-----BEGIN " and ends at the
    # first line that begins with "-----END "; text around blocks (comments, any bytes) is
    # skipped. Stricter than crypto/x509's AppendCertsFromPEM, which skips what it cannot use:
    # every BEGIN line must open a complete block and every block must be an X.509
    # CERTIFICATE. The bundle is installed into each runner's trust store, where a dangling
    # BEGIN line would swallow the next certificate, and a private key must never be shipped.
    # Every search starts where the last one stopped, so the scan is linear in the input.
    blocks = 0
    at = 0
    while True:
        begin = _next_line_starting(data, _BEGIN, at)
        if begin < 0:
            return "" if blocks else "no PEM certificate found"
        type_line, body_start = _line(data, begin)
        if not type_line.endswith(_DASHES) or len(type_line) < len(_BEGIN) + len(_DASHES):
            return f"line {_line_number(data, begin)}: malformed BEGIN line"
        label = type_line[len(_BEGIN) : -len(_DASHES)]
        end = _end_line(data, body_start)
        if end < 0:
            return f"line {_line_number(data, begin)}: PEM block has no matching END line"
        end_line, at = _line(data, end)
        if end_line != _END + label + _DASHES:
            return f"line {_line_number(data, end)}: END line does not match its BEGIN line"
        blocks += 1
        body = data[body_start:end].translate(None, _BASE64_SPACE)
        der = strict_b64decode(body.decode("latin-1"))
        if label != b"CERTIFICATE" or der is None or not _looks_like_x509(der):
            return f"PEM block {blocks} is not an X.509 CERTIFICATE"


def _next_line_starting(data: bytes, prefix: bytes, at: int) -> int:
    # The first line at or after `at` (itself a line start) that begins with prefix, or -1.
    if data.startswith(prefix, at):
        return at
    hit = data.find(b"\n" + prefix, at)
    return hit + 1 if hit >= 0 else -1


def _end_line(data: bytes, at: int) -> int:
    # The END line closing a block whose body starts at `at`, or -1 when there is none or a
    # BEGIN line comes first. Other lines starting with dashes belong to the body (which then
    # fails to decode).
    end = _next_line_starting(data, _END, at)
    if end < 0 or data.startswith(_BEGIN, at) or data.find(b"\n" + _BEGIN, at, end) >= 0:
        return -1
    return end


def _line(data: bytes, start: int) -> tuple[bytes, int]:
    # The line at start without its line break and trailing blanks (Go's getLine), and where
    # the next line starts.
    newline = data.find(b"\n", start)
    if newline < 0:
        return data[start:].rstrip(b" \t"), len(data)
    end = newline - 1 if newline > start and data[newline - 1] == 0x0D else newline
    return data[start:end].rstrip(b" \t"), newline + 1


def _line_number(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _looks_like_x509(der: bytes) -> bool:
    # Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, ... }: the outer DER length covers
    # exactly the decoded bytes and the inner one fits inside it.
    outer = _der_sequence(der, 0)
    inner = _der_sequence(der, outer[0]) if outer else None
    return outer is not None and inner is not None and sum(outer) == len(der) > sum(inner)


def _der_sequence(der: bytes, at: int) -> tuple[int, int] | None:
    # (offset of the content, content length) of the SEQUENCE starting at `at`.
    if len(der) < at + 2 or der[at] != 0x30:
        return None
    size = der[at + 1]
    if size < 0x80:
        return at + 2, size
    width = size & 0x7F
    if not 1 <= width <= 4 or len(der) < at + 2 + width:
        return None
    return at + 2 + width, int.from_bytes(der[at + 2 : at + 2 + width], "big")
