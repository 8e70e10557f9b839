"""Parser for Go text/template source, following text/template/parse/parse.go.

One module for text, control actions and pipelines: they recurse into one another (a
branch holds pipelines and lists, a parenthesised pipeline nests), so they share one
parser state, _Tree.
"""

from __future__ import annotations

from ..errors import TemplateError
from . import nodes as nd
from . import tokens as lx
from .functions import BUILTINS
from .lexer import Lexer
from .literals import parse_number, unquote
from .quote import quote
from .stream import TokenStream

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

_OPERAND_START = frozenset(
    {lx.BOOL, lx.CHAR_CONSTANT, lx.COMPLEX, lx.DOT, lx.FIELD, lx.IDENTIFIER, lx.NUMBER}
    | {lx.NIL, lx.RAW_STRING, lx.STRING, lx.VARIABLE, lx.LEFT_PAREN}
)
_NOT_EXECUTABLE = (nd.BoolNode, nd.DotNode, nd.NilNode, nd.NumberNode, nd.StringNode)
_BRANCHES: dict[str, type[nd.BranchNode]] = {
    lx.IF: nd.IfNode,
    lx.RANGE: nd.RangeNode,
    lx.WITH: nd.WithNode,
}


class Template:
    """One named template: its body and the source it was parsed from."""

    __slots__ = ("name", "parse_name", "root", "text")

    def __init__(self, name: str, parse_name: str, root: nd.ListNode, text: str) -> None:
        self.name = name
        self.parse_name = parse_name
        self.root = root
        self.text = text


# What a token costs in evaluation steps: parsing shares the budget of the execution.
# (A token takes longer to parse than a step takes to run; the source-size cap of
# render() keeps the number of tokens, and so the time spent parsing, small.)
_TOKEN_STEPS = 2
_TOKEN_BYTES_PER_STEP = 64


class _Shared:
    """State shared by the top-level tree and the trees of define and block."""

    def __init__(self, text: str, name: str, max_depth: int, max_steps: int) -> None:
        self.text = text
        self.parse_name = name
        self.lexer = Lexer(text)
        self.depth = 0
        self.max_depth = max_depth
        self.steps = 0
        self.max_steps = max_steps
        self.templates: dict[str, Template] = {}

    def next_item(self) -> lx.Item:
        """Return the next token of the source, charging it to the step budget."""
        item = self.lexer.next_item()
        self.steps += _TOKEN_STEPS + len(item.val) // _TOKEN_BYTES_PER_STEP
        if self.steps > self.max_steps:
            raise TemplateError(
                f"template: {self.parse_name}:{item.line}: parsing exceeded the limit of "
                f"{self.max_steps} evaluation steps"
            )
        return item


class _Names:
    """The variables in scope: a stack for scoping and counts for constant-time lookups."""

    def __init__(self, first: str) -> None:
        self.stack = [first]
        self.counts = {first: 1}

    def __contains__(self, name: str) -> bool:
        return name in self.counts

    def __len__(self) -> int:
        return len(self.stack)

    def append(self, name: str) -> None:
        """Declare a variable."""
        self.stack.append(name)
        self.counts[name] = self.counts.get(name, 0) + 1

    def truncate(self, size: int) -> None:
        """Forget the variables declared after the first size ones."""
        for name in self.stack[size:]:
            self.counts[name] -= 1
            if not self.counts[name]:
                del self.counts[name]
        del self.stack[size:]


class _Tree(TokenStream):
    """Parser state for one template body."""

    def __init__(self, name: str, shared: _Shared) -> None:
        super().__init__(shared)
        self.name = name
        self.shared = shared
        self.root = nd.ListNode(0)
        self.vars = _Names("$")
        self.action_line = 0
        self.range_depth = 0

    def errorf(self, message: str) -> NoReturn:
        """Raise a TemplateError carrying Go's location prefix."""
        line = self.token[0].line
        raise TemplateError(f"template: {self.shared.parse_name}:{line}: {message}")

    def expect(self, expected: str, context: str) -> lx.Item:
        """Consume the next token, which must be of type expected."""
        token = self.next_non_space()
        if token.typ != expected:
            self.unexpected(token, context)
        return token

    def unexpected(self, token: lx.Item, context: str) -> NoReturn:
        """Fail on an unexpected token, as Go words it."""
        if token.typ == lx.ERROR:
            extra = ""
            if self.action_line not in (0, token.line):
                extra = f" in action started at {self.shared.parse_name}:{self.action_line}"
                if token.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            self.errorf(token.describe() + extra)
        self.errorf(f"unexpected {token.describe()} in {context}")

    def enter(self, message: str) -> None:
        """Go one level deeper; fail past the depth limit."""
        self.shared.depth += 1
        if self.shared.depth > self.shared.max_depth:
            self.errorf(message)

    def add(self) -> None:
        """Install this tree in the template set (parse.Tree.add rules)."""
        templates = self.shared.templates
        existing = templates.get(self.name)
        if existing is None or nd.is_empty_tree(existing.root):
            templates[self.name] = Template(
                self.name, self.shared.parse_name, self.root, self.shared.text
            )
            return
        if not nd.is_empty_tree(self.root):
            self.errorf(f"template: multiple definition of template {quote(self.name)}")

    def parse(self) -> None:
        """Parse the top-level template, including its definitions."""
        self.root = nd.ListNode(self.peek().pos)
        while self.peek().typ != lx.EOF:
            if self.peek().typ == lx.LEFT_DELIM:
                delim = self.next()
                if self.next_non_space().typ == lx.DEFINE:
                    _Tree("definition", self.shared).parse_definition()
                    continue
                self.backup2(delim)
            node = self.text_or_action()
            if isinstance(node, (nd.EndNode, nd.ElseNode)):
                self.errorf(f"unexpected {node}")
            self.root.nodes.append(node)

    def parse_definition(self) -> None:
        """Parse {{define "name"}} ... {{end}}."""
        context = "define clause"
        self.name = self.template_name(self.next_non_space(), context)
        self.expect(lx.RIGHT_DELIM, context)
        self.root, end = self.item_list()
        if not isinstance(end, nd.EndNode):
            self.errorf(f"unexpected {end} in {context}")
        self.add()

    def unquote(self, text: str) -> str:
        """Unquote a string literal; fail with Go's message."""
        try:
            return unquote(text)
        except ValueError as err:
            self.errorf(str(err))

    def item_list(self) -> tuple[nd.ListNode, nd.Node]:
        """Parse text and actions up to {{end}} or {{else}}."""
        body = nd.ListNode(self.peek_non_space().pos)
        while self.peek_non_space().typ != lx.EOF:
            node = self.text_or_action()
            if isinstance(node, (nd.EndNode, nd.ElseNode)):
                return body, node
            body.nodes.append(node)
        self.errorf("unexpected EOF")

    def text_or_action(self) -> nd.Node:
        """Parse text or one action."""
        token = self.next_non_space()
        if token.typ == lx.TEXT:
            return nd.TextNode(token.pos, token.val)
        if token.typ == lx.LEFT_DELIM:
            self.action_line = token.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        self.unexpected(token, "input")

    def action(self) -> nd.Node:
        """Parse the action after a left delimiter."""
        token = self.next_non_space()
        node = self.control_action(token)
        if node is not None:
            return node
        self.backup()
        token = self.peek()
        return nd.ActionNode(token.pos, token.line, self.pipeline("command", lx.RIGHT_DELIM))

    def control_action(self, token: lx.Item) -> nd.Node | None:
        """Parse the control action token starts, or return None for a plain pipeline."""
        typ = token.typ
        if typ in _BRANCHES:
            return self.parse_branch(typ)
        if typ in (lx.BREAK, lx.CONTINUE):
            following = self.next_non_space()
            if following.typ != lx.RIGHT_DELIM:
                self.unexpected(following, "{{" + typ + "}}")
            if self.range_depth == 0:
                self.errorf("{{" + typ + "}} outside {{range}}")
            return nd.BreakNode(token.pos) if typ == lx.BREAK else nd.ContinueNode(token.pos)
        if typ == lx.ELSE:
            peek = self.peek_non_space()
            if peek.typ in (lx.IF, lx.WITH):
                return nd.ElseNode(peek.pos)
            return nd.ElseNode(self.expect(lx.RIGHT_DELIM, "else").pos)
        if typ == lx.END:
            self.expect(lx.RIGHT_DELIM, "end")
            return nd.EndNode(token.pos)
        if typ == lx.TEMPLATE:
            return self.parse_template()
        if typ == lx.BLOCK:
            return self.parse_block()
        return None

    def parse_branch(self, context: str) -> nd.BranchNode:
        """Parse the rest of an if, range or with action and its lists."""
        self.enter("max nesting depth exceeded")
        saved_vars = len(self.vars)
        try:
            pipe = self.pipeline(context, lx.RIGHT_DELIM)
            if context == lx.RANGE:
                self.range_depth += 1
            body, following = self.item_list()
            if context == lx.RANGE:
                self.range_depth -= 1
            else_list = None
            if isinstance(following, nd.ElseNode):
                if context in (lx.IF, lx.WITH) and self.peek().typ == context:
                    self.next()
                    else_list = nd.ListNode(following.pos)
                    else_list.nodes.append(self.parse_branch(context))
                else:
                    else_list, following = self.item_list()
                    if not isinstance(following, nd.EndNode):
                        self.errorf(f"expected end; found {following}")
        finally:
            self.vars.truncate(saved_vars)
        self.shared.depth -= 1
        return _BRANCHES[context](pipe.pos, pipe.line, pipe, body, else_list)

    def template_name(self, token: lx.Item, context: str) -> str:
        """Return the name a template or block action names."""
        if token.typ not in (lx.STRING, lx.RAW_STRING):
            self.unexpected(token, context)
        return self.unquote(token.val)

    def parse_template(self) -> nd.TemplateNode:
        """Parse {{template "name" pipeline}}."""
        token = self.next_non_space()
        name = self.template_name(token, "template clause")
        pipe = None
        if self.next_non_space().typ != lx.RIGHT_DELIM:
            self.backup()
            pipe = self.pipeline("template clause", lx.RIGHT_DELIM)
        return nd.TemplateNode(token.pos, token.line, name, pipe)

    def parse_block(self) -> nd.TemplateNode:
        """Parse {{block "name" pipeline}} body {{end}}: define name and invoke it."""
        context = "block clause"
        token = self.next_non_space()
        name = self.template_name(token, context)
        pipe = self.pipeline(context, lx.RIGHT_DELIM)
        self.enter("max nesting depth exceeded")
        block = _Tree(name, self.shared)
        block.root, end = block.item_list()
        if not isinstance(end, nd.EndNode):
            self.errorf(f"unexpected {end} in {context}")
        block.add()
        self.shared.depth -= 1
        return nd.TemplateNode(token.pos, token.line, name, pipe)

    def pipeline(self, context: str, end: str) -> nd.PipeNode:
        """Parse declarations and commands up to end."""
        token = self.peek_non_space()
        pipe = nd.PipeNode(token.pos, token.line)
        while True:
            var = self.peek_non_space()
            if var.typ != lx.VARIABLE:
                break
            self.next()
            after_variable = self.peek()
            following = self.peek_non_space()
            if following.typ in (lx.ASSIGN, lx.DECLARE):
                pipe.is_assign = following.typ == lx.ASSIGN
                self.next_non_space()
                pipe.decl.append(nd.VariableNode(var.pos, var.val))
                self.vars.append(var.val)
            elif following.typ == lx.CHAR and following.val == ",":
                self.next_non_space()
                pipe.decl.append(nd.VariableNode(var.pos, var.val))
                self.vars.append(var.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in (lx.VARIABLE, lx.RIGHT_DELIM, lx.RIGHT_PAREN):
                        continue
                    self.errorf("range can only initialize variables")
                self.errorf(f"too many declarations in {context}")
            elif after_variable.typ == lx.SPACE:
                self.backup3(var, after_variable)
            else:
                self.backup2(var)
            break
        while True:
            token = self.next_non_space()
            if token.typ == end:
                self.check_pipeline(pipe, context)
                return pipe
            if token.typ not in _OPERAND_START:
                self.unexpected(token, context)
            self.backup()
            pipe.cmds.append(self.command())

    def check_pipeline(self, pipe: nd.PipeNode, context: str) -> None:
        """Reject empty pipelines and non-executable later stages."""
        if not pipe.cmds:
            self.errorf(f"missing value for {context}")
        for stage, cmd in enumerate(pipe.cmds[1:], start=2):
            if isinstance(cmd.args[0], _NOT_EXECUTABLE):
                self.errorf(f"non executable command in pipeline stage {stage}")

    def command(self) -> nd.CommandNode:
        """Parse one command: operands up to a pipe or the closing delimiter."""
        cmd = nd.CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self.next()
            if token.typ == lx.SPACE:
                continue
            if token.typ in (lx.RIGHT_DELIM, lx.RIGHT_PAREN):
                self.backup()
            elif token.typ != lx.PIPE:
                self.unexpected(token, "operand")
            break
        if not cmd.args:
            self.errorf("empty command")
        return cmd

    def operand(self) -> nd.Node | None:
        """Parse a term followed by field accesses."""
        node = self.term()
        if node is None or self.peek().typ != lx.FIELD:
            return node
        chain = nd.ChainNode(self.peek().pos, node)
        while self.peek().typ == lx.FIELD:
            chain.field.append(self.next().val[1:])
        if isinstance(node, nd.FieldNode):
            return nd.FieldNode(chain.pos, str(chain))
        if isinstance(node, nd.VariableNode):
            return nd.VariableNode(chain.pos, str(chain))
        if isinstance(node, _NOT_EXECUTABLE):
            self.errorf(f"unexpected . after term {quote(str(node))}")
        return chain

    def term(self) -> nd.Node | None:
        """Parse a literal, function, field, variable or parenthesised pipeline."""
        token = self.next_non_space()
        typ = token.typ
        if typ == lx.IDENTIFIER:
            if token.val not in BUILTINS:
                self.errorf(f"function {quote(token.val)} not defined")
            return nd.IdentifierNode(token.pos, token.val)
        if typ == lx.DOT:
            return nd.DotNode(token.pos)
        if typ == lx.NIL:
            return nd.NilNode(token.pos)
        if typ == lx.VARIABLE:
            return self.use_var(token.pos, token.val)
        if typ == lx.FIELD:
            return nd.FieldNode(token.pos, token.val)
        if typ == lx.BOOL:
            return nd.BoolNode(token.pos, token.val == "true")
        if typ in (lx.CHAR_CONSTANT, lx.COMPLEX, lx.NUMBER):
            try:
                number = parse_number(token.val, typ == lx.CHAR_CONSTANT, typ == lx.COMPLEX)
            except ValueError as err:
                self.errorf(str(err))
            return nd.NumberNode(token.pos, number)
        if typ == lx.LEFT_PAREN:
            self.enter("max expression depth exceeded")
            pipe = self.pipeline("parenthesized pipeline", lx.RIGHT_PAREN)
            self.shared.depth -= 1
            return pipe
        if typ in (lx.STRING, lx.RAW_STRING):
            return nd.StringNode(token.pos, token.val, self.unquote(token.val))
        self.backup()
        return None

    def use_var(self, pos: int, name: str) -> nd.VariableNode:
        """Return a variable reference; fail if it is not declared."""
        node = nd.VariableNode(pos, name)
        if node.ident[0] not in self.vars:
            self.errorf(f"undefined variable {quote(node.ident[0])}")
        return node


def parse(text: str, name: str, max_depth: int, max_steps: int) -> tuple[dict[str, Template], int]:
    """Parse template source into the templates it defines, keyed by name, and the steps spent."""
    shared = _Shared(text, name, max_depth, max_steps)
    tree = _Tree(name, shared)
    tree.parse()
    tree.add()
    return shared.templates, shared.steps
