"""Calling a builtin function from a template command (exec.go evalCall)."""

from __future__ import annotations

from . import nodes as nd
from .functions import BUILTINS
from .quote import quote
from .values import NO_VALUE, is_true

TYPE_CHECKING = False

if TYPE_CHECKING:
    from .evaluate import Evaluator


def eval_call(
    state: Evaluator,
    dot: object,
    name: str,
    node: nd.Node,
    args: list[nd.Node] | None,
    final: object,
) -> object:
    """Evaluate the arguments of a builtin, check its arity and run it."""
    from .evaluate import MISSING

    if name not in BUILTINS:
        state.errorf(f"{quote(name)} is not a defined function")
    fixed, variadic, _ = BUILTINS[name]
    operands = args[1:] if args else []
    count = len(operands) + (final is not MISSING)
    if variadic:
        if count < len(fixed):
            state.errorf(
                f"wrong number of args for {name}: want at least {len(fixed)} got {len(operands)}"
            )
    elif count != len(fixed):
        state.errorf(f"wrong number of args for {name}: want {len(fixed)} got {count}")
    if name in ("and", "or"):
        value: object = NO_VALUE
        for operand in operands:
            value = state.eval_arg(dot, fixed[0], operand)
            if is_true(value) == (name == "or"):
                return value
        if final is not MISSING:
            value = state.validate_type(final, fixed[0])
        return value
    argv = []
    for position, operand in enumerate(operands):
        typ = fixed[position] if position < len(fixed) else variadic
        argv.append(state.eval_arg(dot, typ, operand))
    if final is not MISSING:
        typ = fixed[count - 1] if count - 1 < len(fixed) else variadic
        argv.append(state.validate_type(final, typ))
    if name == "call":
        argv.insert(0, str(operands[0]) if operands else "")
    return state.call_builtin(name, node, argv)
