"""Go text/template, interpreted in Python, for runner install templates.

render() produces byte for byte what Go's text/template produces for the same source and
data, within limits on output size, evaluation steps and nesting depth.  Templates can
only read the data they are given: no function calls into Python, no attribute access,
no file, environment or interpreter access.  See docs/templates.md.
"""

from __future__ import annotations

from ..errors import TemplateError
from .values import GoStruct

__all__ = ["GoStruct", "TemplateError", "render"]


MAX_MESSAGE = 400  # characters of an error message; longer ones are cut with "..."


def render(
    source: str,
    data: object,
    *,
    name: str = "",
    max_output: int = 1 << 20,
    max_steps: int = 1_000_000,
    max_depth: int = 100,
    max_source: int = 128 << 10,
) -> str:
    """Execute Go template source with data as dot; raise TemplateError on any failure."""
    from .execute import State
    from .parser import parse
    from .values import byte_len, clear_caches, go_bytes

    try:
        size = byte_len(source)
        if size > max_source:
            raise TemplateError(
                f"template: {name}: the template is {size} bytes, more than the limit of "
                f"{max_source}"
            )
        templates, steps = parse(source, name, max_depth, max_steps)
        state = State(templates, (max_output, max_steps, max_depth))
        state.steps = steps
        output = state.run(name, data)
    except RecursionError:
        raise TemplateError(f"template: {name}: nesting too deep") from None
    except TemplateError as err:
        message = str(err)
        if len(message) <= MAX_MESSAGE:
            raise
        raise TemplateError(message[: MAX_MESSAGE - 3] + "...") from None
    finally:
        clear_caches()
    if not output.isascii():
        output = go_bytes(output).decode("utf-8", "replace")
    return output
