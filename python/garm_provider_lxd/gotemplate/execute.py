"""Walking a template tree to produce output (text/template/exec.go), within limits."""

from __future__ import annotations

from . import nodes as nd
from .evaluate import Evaluator
from .format import OutputLimitError
from .printf import sprint
from .quote import quote
from .values import NO_VALUE, Byte, byte_len, go_type, is_true, sorted_items

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from .parser import Template

_BREAK = "break"
_CONTINUE = "continue"


def _shown(value: object) -> str:
    """Describe a value in an error message without revealing its contents."""
    if isinstance(value, (bool, int, float, complex)) or value is NO_VALUE:
        return sprint([value], 1 << 10)
    return f"<{go_type(value)}>"


class State(Evaluator):
    """One execution: walks the tree of the template being run and collects output."""

    def __init__(self, templates: dict[str, Template], limits: tuple[int, int, int]) -> None:
        super().__init__(templates, limits)
        self.out: list[str] = []
        self.out_bytes = 0

    def run(self, name: str, data: object) -> str:
        """Execute the named template with data as dot and $; return its output."""
        self.tmpl = self.templates[name]
        self.vars = [["$", data]]
        self.walk(data, self.tmpl.root)
        return "".join(self.out)

    def write(self, text: str) -> None:
        """Write output (or formatted text), enforcing the size limit."""
        self.out_bytes += byte_len(text)
        if self.out_bytes > self.max_output:
            self.errorf(f"output exceeds the limit of {self.max_output} bytes")
        self.out.append(text)

    def walk(self, dot: object, node: nd.Node) -> str | None:
        """Execute a node; return "break" or "continue" to unwind loops."""
        self.node = node
        kind = type(node)
        if kind is not nd.ListNode:
            self.step()
        if kind is nd.TextNode:
            self.write(node.text)  # type: ignore[attr-defined]
        elif kind is nd.ListNode:
            for child in node.nodes:  # type: ignore[attr-defined]
                status = self.walk(dot, child)
                if status is not None:
                    return status
        elif kind is nd.ActionNode:
            pipe = node.pipe  # type: ignore[attr-defined]
            value = self.eval_pipeline(dot, pipe)
            if not pipe.decl:
                self.node = node
                self.print_value(value)
        elif kind in (nd.IfNode, nd.WithNode):
            return self.walk_if_or_with(dot, node)  # type: ignore[arg-type]
        elif kind is nd.RangeNode:
            return self.walk_range(dot, node)  # type: ignore[arg-type]
        elif kind is nd.TemplateNode:
            self.walk_template(dot, node)  # type: ignore[arg-type]
        elif kind is nd.BreakNode:
            return _BREAK
        elif kind is nd.ContinueNode:
            return _CONTINUE
        else:
            self.errorf(f"unknown node: {node}")
        return None

    def print_value(self, value: object) -> None:
        """Print a value with a verb (fmt.printValue), a step."""
        self.step()
        if value is NO_VALUE:
            self.write("<no value>")
            return
        try:
            text = sprint([value], max(self.max_output - self.out_bytes, 0))
        except OutputLimitError:
            self.errorf(f"output exceeds the limit of {self.max_output} bytes")
        self.write(text)

    def walk_if_or_with(self, dot: object, node: nd.BranchNode) -> str | None:
        """Execute an if or with action."""
        mark = len(self.vars)
        self.enter()
        try:
            value = self.eval_pipeline(dot, node.pipe)
            if is_true(value):
                return self.walk(value if isinstance(node, nd.WithNode) else dot, node.list)
            if node.else_list is not None:
                return self.walk(dot, node.else_list)
            return None
        finally:
            del self.vars[mark:]
            self.depth -= 1

    def walk_range(self, dot: object, node: nd.BranchNode) -> str | None:
        """Execute a range action."""
        self.node = node
        outer = len(self.vars)
        self.enter()
        try:
            value = self.eval_pipeline(dot, node.pipe)
            items: Iterable[tuple[object, object]] = ()
            if isinstance(value, (list, tuple)):
                items = enumerate(value)
            elif isinstance(value, dict):
                items = sorted_items(value)
            elif isinstance(value, int) and not isinstance(value, bool):
                if len(node.pipe.decl) > 1:
                    self.errorf(f"can't use {value} to iterate over more than one variable")
                kind = Byte if isinstance(value, Byte) else int
                items = ((kind(i), kind(i)) for i in range(value))
            elif value is not NO_VALUE:
                self.errorf(f"range can't iterate over {_shown(value)}")
            mark = len(self.vars)
            ran = False
            for index, elem in items:
                ran = True
                self.node = node
                self.step()
                if self.iterate(node, mark, index, elem) == _BREAK:
                    return None
            if ran:
                return None
            if node.else_list is not None:
                status = self.walk(dot, node.else_list)
                return None if status == _BREAK else status
            return None
        finally:
            del self.vars[outer:]
            self.depth -= 1

    def iterate(self, node: nd.BranchNode, mark: int, index: object, elem: object) -> str | None:
        """Run one range iteration with its variables set."""
        pipe = node.pipe
        if pipe.decl:
            if pipe.is_assign:
                first = index if len(pipe.decl) > 1 else elem
                self.set_var(pipe.decl[0].ident[0], first)
            else:
                self.vars[mark - 1][1] = elem
        if len(pipe.decl) > 1:
            if pipe.is_assign:
                self.set_var(pipe.decl[1].ident[0], elem)
            else:
                self.vars[mark - 2][1] = index
        try:
            return self.walk(elem, node.list)
        finally:
            del self.vars[mark:]

    def walk_template(self, dot: object, node: nd.TemplateNode) -> None:
        """Execute a {{template}} call."""
        self.node = node
        tmpl = self.templates.get(node.name)
        if tmpl is None:
            self.errorf(f"template {quote(node.name)} not defined")
        self.enter()
        dot = self.eval_pipeline(dot, node.pipe)
        saved = self.tmpl, self.vars
        self.tmpl, self.vars = tmpl, [["$", dot]]
        try:
            self.walk(dot, tmpl.root)
        finally:
            self.tmpl, self.vars = saved
            self.depth -= 1
