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


def render(
    source: str,
    data: object,
    *,
    name: str = "",
    max_output: int = 1 << 20,
    max_steps: int = 1_000_000,
    max_depth: int = 100,
) -> str:
    """Execute Go template source with data as dot; raise TemplateError on any failure."""
    from .execute import State
    from .parser import parse

    try:
        templates = parse(source, name, max_depth)
        output = State(templates, (max_output, max_steps, max_depth)).run(name, data)
    except RecursionError:
        raise TemplateError(f"template: {name}: nesting too deep") from None
    if not output.isascii():
        from .values import go_bytes

        output = go_bytes(output).decode("utf-8", "replace")
    return output
