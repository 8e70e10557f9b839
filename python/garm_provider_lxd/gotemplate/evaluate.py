"""Evaluation of pipelines, commands, fields, arguments and calls (text/template/exec.go)."""

from __future__ import annotations

from ..errors import TemplateError
from . import nodes as nd
from .format import OutputLimitError
from .functions import ANY, BUILTINS, STRING, CallError, result_cost
from .quote import quote
from .values import NO_VALUE, GoStruct, accepts_string_key, byte_len, go_type, is_true

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

    from .parser import Template

MISSING = object()  # no value is passed on from a previous pipeline command
_MAX_NODE_TEXT = 120  # characters of a node shown in an error message
_VARS_PER_STEP = 3  # searching 2**3 variables costs one step


class Evaluator:
    """Execution state shared by evaluation and walking: templates, variables, limits."""

    def __init__(self, templates: dict[str, Template], limits: tuple[int, int, int]) -> None:
        self.templates = templates
        self.max_output, self.max_steps, self.max_depth = limits
        self.steps = 0
        self.depth = 0
        self.tmpl: Template | None = None
        self.node: nd.Node | None = None
        self.vars: list[list[object]] = []

    def errorf(self, message: str) -> NoReturn:
        """Raise a TemplateError carrying Go's location prefix."""
        assert self.tmpl is not None
        name = quote(self.tmpl.name)
        if self.node is None:
            raise TemplateError(f"template: {self.tmpl.name}: {message}")
        text = self.tmpl.text[: self.node.pos]
        line = text.count("\n") + 1
        column = byte_len(text[text.rfind("\n") + 1 :])
        location = f"{self.tmpl.parse_name}:{line}:{column}"
        node = str(self.node)
        if len(node) > _MAX_NODE_TEXT:
            node = node[: _MAX_NODE_TEXT - 3] + "..."
        raise TemplateError(f"template: {location}: executing {name} at <{node}>: {message}")

    def step(self, cost: int = 1) -> None:
        """Count evaluation work; fail past the step limit."""
        self.steps += cost
        if self.steps > self.max_steps:
            self.errorf(f"exceeded the limit of {self.max_steps} evaluation steps")

    def enter(self) -> None:
        """Go one level deeper; fail past the depth limit."""
        self.depth += 1
        if self.depth > self.max_depth:
            self.errorf(f"exceeded maximum template depth ({self.max_depth})")

    def find_var(self, name: str) -> list[object]:
        """Return the innermost variable called name, charging the search to the budget."""
        variables = self.vars
        for index in range(len(variables) - 1, -1, -1):
            if variables[index][0] == name:
                self.step((len(variables) - index) >> _VARS_PER_STEP)
                return variables[index]
        self.errorf(f"undefined variable: {name}")

    def set_var(self, name: str, value: object) -> None:
        """Assign to the innermost variable called name."""
        self.find_var(name)[1] = value

    def var_value(self, name: str) -> object:
        """Return the value of the innermost variable called name."""
        return self.find_var(name)[1]

    def eval_pipeline(self, dot: object, pipe: nd.PipeNode | None) -> object:
        """Evaluate a pipeline and bind its declared variables."""
        if pipe is None:
            return NO_VALUE
        self.node = pipe
        value: object = MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
            if value is None:
                value = NO_VALUE
        for variable in pipe.decl:
            if pipe.is_assign:
                self.set_var(variable.ident[0], value)
            else:
                self.vars.append([variable.ident[0], value])
        return value

    def not_a_function(self, args: list[nd.Node], final: object) -> None:
        """Fail if a non-function is given arguments."""
        if len(args) > 1 or final is not MISSING:
            self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: object, cmd: nd.CommandNode, final: object) -> object:
        """Evaluate one command of a pipeline."""
        self.step()
        first = cmd.args[0]
        if isinstance(first, nd.FieldNode):
            self.node = first
            return self.eval_field_chain(dot, dot, first, first.ident, cmd.args, final)
        if isinstance(first, nd.ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, nd.IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, nd.PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_nested(dot, first)
        if isinstance(first, nd.VariableNode):
            return self.eval_variable(dot, first, cmd.args, final)
        self.node = first
        self.not_a_function(cmd.args, final)
        return self.eval_literal(dot, first)

    def eval_nested(self, dot: object, pipe: nd.PipeNode) -> object:
        """Evaluate a parenthesised pipeline one level deeper."""
        self.enter()
        try:
            return self.eval_pipeline(dot, pipe)
        finally:
            self.depth -= 1

    def eval_literal(self, dot: object, node: nd.Node) -> object:
        """Evaluate a constant, dot or nil used as a command."""
        if isinstance(node, nd.BoolNode):
            return node.value
        if isinstance(node, nd.DotNode):
            return dot
        if isinstance(node, nd.NilNode):
            self.errorf("nil is not a command")
        if isinstance(node, nd.NumberNode):
            return self.ideal_constant(node)
        if isinstance(node, nd.StringNode):
            return node.text
        self.errorf(f"can't evaluate command {quote(str(node))}")

    def ideal_constant(self, node: nd.NumberNode) -> object:
        """Give a number literal its Go type (int, float64 or complex128)."""
        self.node = node
        number = node.number
        text = number.text
        if number.is_complex:
            return number.complex128
        hex_int = text[:2] in ("0x", "0X") and len(text) > 2 and not any(c in text for c in "pP")
        if number.is_float and not hex_int and text[:1] != "'" and any(c in text for c in ".eEpP"):
            return number.float64
        if number.is_int:
            return number.int64
        if number.is_uint:
            self.errorf(f"{text} overflows int")
        return NO_VALUE

    def eval_chain(
        self, dot: object, chain: nd.ChainNode, args: list[nd.Node], final: object
    ) -> object:
        """Evaluate (pipeline).Field chains."""
        self.node = chain
        if isinstance(chain.node, nd.NilNode):
            self.errorf(f"indirection through explicit nil in {chain}")
        receiver = self.eval_arg(dot, "", chain.node)
        return self.eval_field_chain(dot, receiver, chain, chain.field, args, final)

    def eval_variable(
        self, dot: object, node: nd.VariableNode, args: list[nd.Node] | None, final: object
    ) -> object:
        """Evaluate $x or $x.Field."""
        self.node = node
        value = self.var_value(node.ident[0])
        if len(node.ident) == 1:
            self.not_a_function(args or [node], final)
            return value
        return self.eval_field_chain(dot, value, node, node.ident[1:], args, final)

    def eval_field_chain(
        self,
        dot: object,
        receiver: object,
        node: nd.Node,
        names: list[str],
        args: list[nd.Node] | None,
        final: object,
    ) -> object:
        """Evaluate .X.Y.Z starting at receiver, a step per field."""
        self.step(len(names))
        for name in names[:-1]:
            receiver = self.eval_field(name, None, MISSING, receiver)
        return self.eval_field(names[-1], args, final, receiver)

    def eval_field(
        self, name: str, args: list[nd.Node] | None, final: object, receiver: object
    ) -> object:
        """Evaluate one field or map key on receiver."""
        if receiver is NO_VALUE:
            return NO_VALUE
        if receiver is None:
            self.errorf(f"nil pointer evaluating {go_type(receiver)}.{name}")
        has_args = (args is not None and len(args) > 1) or final is not MISSING
        if isinstance(receiver, GoStruct) and name in receiver.fields:
            if not name[0].isupper():
                self.errorf(f"{name} is an unexported field of struct type {go_type(receiver)}")
            if has_args:
                self.errorf(f"{name} has arguments but cannot be invoked as function")
            return receiver.fields[name]
        if isinstance(receiver, dict) and accepts_string_key(receiver):
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            return receiver.get(name, NO_VALUE)
        self.errorf(f"can't evaluate field {name} in type {go_type(receiver)}")

    def eval_function(
        self,
        dot: object,
        node: nd.IdentifierNode,
        cmd: nd.Node,
        args: list[nd.Node] | None,
        final: object,
    ) -> object:
        """Evaluate a builtin function call."""
        self.node = node
        return self.eval_call(dot, node.ident, cmd, args, final)

    def eval_call(
        self, dot: object, name: str, node: nd.Node, args: list[nd.Node] | None, final: object
    ) -> object:
        """Evaluate the arguments of a builtin, check its arity and run it."""
        builtin = BUILTINS.get(name)
        if builtin is None:
            self.errorf(f"{quote(name)} is not a defined function")
        fixed, variadic = builtin.fixed, builtin.variadic
        operands = args[1:] if args else []
        count = len(operands) + (final is not MISSING)
        if variadic:
            if count < len(fixed):
                self.errorf(
                    f"wrong number of args for {name}: want at least {len(fixed)} "
                    f"got {len(operands)}"
                )
        elif count != len(fixed):
            self.errorf(f"wrong number of args for {name}: want {len(fixed)} got {count}")
        if name in ("and", "or"):
            value: object = NO_VALUE
            for operand in operands:
                value = self.eval_arg(dot, fixed[0], operand)
                if is_true(value) == (name == "or"):
                    return value
            if final is not MISSING:
                value = self.validate_type(final, fixed[0])
            return value
        argv = []
        for position, operand in enumerate(operands):
            typ = fixed[position] if position < len(fixed) else variadic
            argv.append(self.eval_arg(dot, typ, operand))
        if final is not MISSING:
            typ = fixed[count - 1] if count - 1 < len(fixed) else variadic
            argv.append(self.validate_type(final, typ))
        if name == "call":
            argv.insert(0, str(operands[0]) if operands else "")
        return self.call_builtin(name, node, argv)

    def eval_arg(self, dot: object, typ: str, node: nd.Node) -> object:
        """Evaluate an argument for a parameter of type typ."""
        self.node = node
        if isinstance(node, nd.DotNode):
            return self.validate_type(dot, typ)
        if isinstance(node, nd.NilNode):
            if typ == STRING:
                self.errorf("cannot assign nil to string")
            return None if typ == ANY else NO_VALUE
        if isinstance(node, nd.FieldNode):
            value = self.eval_field_chain(dot, dot, node, node.ident, [node], MISSING)
        elif isinstance(node, nd.VariableNode):
            value = self.eval_variable(dot, node, None, MISSING)
        elif isinstance(node, nd.PipeNode):
            value = self.eval_nested(dot, node)
        elif isinstance(node, nd.IdentifierNode):
            value = self.eval_function(dot, node, node, None, MISSING)
        elif isinstance(node, nd.ChainNode):
            value = self.eval_chain(dot, node, [], MISSING)
        elif typ == STRING:
            if isinstance(node, nd.StringNode):
                return node.text
            self.errorf(f"expected string; found {node}")
        else:
            return self.eval_literal(dot, node)
        return self.validate_type(value, typ)

    def validate_type(self, value: object, typ: str) -> object:
        """Check a value against a parameter type."""
        if value is NO_VALUE:
            if typ == STRING:
                self.errorf("invalid value; expected string")
            return None if typ == ANY else NO_VALUE
        if typ == STRING and not isinstance(value, str):
            self.errorf(f"wrong type for value; expected string; got {go_type(value)}")
        return value

    def call_builtin(self, name: str, node: nd.Node, argv: list[object]) -> object:
        """Run a builtin, charged by the size of its input; turn a failure into Go's message."""
        builtin = BUILTINS[name]
        assert builtin.run is not None
        self.step(builtin.cost(argv))
        try:
            result = builtin.run(argv, self.max_output)
        except CallError as err:
            self.node = node
            self.errorf(f"error calling {name}: {err}")
        except OutputLimitError:
            self.node = node
            self.errorf(f"error calling {name}: result exceeds {self.max_output} bytes")
        self.step(result_cost(result))
        return result
