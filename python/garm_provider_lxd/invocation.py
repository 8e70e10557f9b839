"""One run of the program: its standard streams, the bootstrap JSON GARM writes to stdin,
the single result on stdout, and SIGTERM turned into an exception."""

from __future__ import annotations

from .errors import InputError, ProviderError

# Type-only imports: `typing` costs start-up time on every runner command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal
    from typing import IO, Any
else:
    # The interpreter's built-in half of `signal`, which only adds enums to it: importing
    # `signal` would load `enum` (~5 ms of CPU) into every create. The type checker reads
    # `signal`, which has the same functions and constants.
    import _signal

MAX_STDIN_BYTES = 4 << 20


class Streams:
    """The three standard streams of one invocation (binary stdout, text stderr)."""

    def __init__(self, stdin: IO[bytes], stdout: IO[bytes], stderr: IO[str]) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr


def write(stdout: IO[bytes], data: bytes) -> None:
    """Write the command's single result to stdout."""
    stdout.write(data)
    stdout.flush()


def read_bootstrap(stdin: IO[bytes]) -> dict[str, Any]:
    """Read and decode the BootstrapInstance JSON GARM writes to stdin."""
    from ._native import json_loads

    data = stdin.read(MAX_STDIN_BYTES + 1)
    if len(data) > MAX_STDIN_BYTES:
        raise InputError(f"bootstrap JSON on stdin is larger than {MAX_STDIN_BYTES >> 20} MiB")
    if not data.strip():
        raise InputError("no bootstrap JSON on stdin")
    try:
        value = json_loads(data)
    except ValueError as exc:
        what = "JSON nested too deeply" if "recursion limit" in str(exc) else "not valid JSON"
        raise InputError(f"bootstrap: {what}{json_error_position(str(exc))}") from None
    if not isinstance(value, dict):
        raise InputError("bootstrap JSON on stdin must be an object")
    return value


def json_error_position(message: str) -> str:
    """` (line 1, column 2)` from serde_json's "<reason> at line 1 column 2" (else empty).

    The reason is the parser's view ("expected ident"), which means nothing to whoever wrote
    the JSON; where it went wrong does.
    """
    _, found, where = message.rpartition(" at line ")
    line, _, column = where.partition(" column ")
    if not found or not line.isdigit() or not column.isdigit():
        return ""
    return f" (line {line}, column {column})"


class signals_as_exceptions:
    """Turn SIGTERM into an exception so a create in progress cleans up after itself."""

    def __enter__(self) -> None:
        def interrupted(signum: int, frame: object) -> None:
            raise ProviderError(f"interrupted by signal {signum}")

        self._previous = _signal.signal(_signal.SIGTERM, interrupted)

    def __exit__(self, *exc: object) -> None:
        _signal.signal(_signal.SIGTERM, self._previous)
