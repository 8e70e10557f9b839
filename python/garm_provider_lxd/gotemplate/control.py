"""Parsing of control actions: if, range, with, else, end, break, continue, template, block."""

from __future__ import annotations

from . import nodes as nd
from . import tokens as lx

TYPE_CHECKING = False

if TYPE_CHECKING:
    from .parser import _Tree

_BRANCHES: dict[str, type[nd.BranchNode]] = {
    lx.IF: nd.IfNode,
    lx.RANGE: nd.RangeNode,
    lx.WITH: nd.WithNode,
}


def control_action(tree: _Tree, token: lx.Item) -> nd.Node | None:
    """Parse the control action token starts, or return None for a plain pipeline."""
    typ = token.typ
    if typ in _BRANCHES:
        return parse_branch(tree, typ)
    if typ in (lx.BREAK, lx.CONTINUE):
        following = tree.next_non_space()
        if following.typ != lx.RIGHT_DELIM:
            tree.unexpected(following, "{{" + typ + "}}")
        if tree.range_depth == 0:
            tree.errorf("{{" + typ + "}} outside {{range}}")
        return nd.BreakNode(token.pos) if typ == lx.BREAK else nd.ContinueNode(token.pos)
    if typ == lx.ELSE:
        peek = tree.peek_non_space()
        if peek.typ in (lx.IF, lx.WITH):
            return nd.ElseNode(peek.pos)
        return nd.ElseNode(tree.expect(lx.RIGHT_DELIM, "else").pos)
    if typ == lx.END:
        tree.expect(lx.RIGHT_DELIM, "end")
        return nd.EndNode(token.pos)
    if typ == lx.TEMPLATE:
        return parse_template(tree)
    if typ == lx.BLOCK:
        return parse_block(tree)
    return None


def parse_branch(tree: _Tree, context: str) -> nd.BranchNode:
    """Parse the rest of an if, range or with action and its lists."""
    tree.enter("max nesting depth exceeded")
    saved_vars = len(tree.vars)
    try:
        pipe = tree.pipeline(context, lx.RIGHT_DELIM)
        if context == lx.RANGE:
            tree.range_depth += 1
        body, following = tree.item_list()
        if context == lx.RANGE:
            tree.range_depth -= 1
        else_list = None
        if isinstance(following, nd.ElseNode):
            if context in (lx.IF, lx.WITH) and tree.peek().typ == context:
                tree.next()
                else_list = nd.ListNode(following.pos)
                else_list.nodes.append(parse_branch(tree, context))
            else:
                else_list, following = tree.item_list()
                if not isinstance(following, nd.EndNode):
                    tree.errorf(f"expected end; found {following}")
    finally:
        tree.vars.truncate(saved_vars)
    tree.shared.depth -= 1
    return _BRANCHES[context](pipe.pos, pipe.line, pipe, body, else_list)


def template_name(tree: _Tree, token: lx.Item, context: str) -> str:
    """Return the name a template or block action names."""
    if token.typ not in (lx.STRING, lx.RAW_STRING):
        tree.unexpected(token, context)
    return tree.unquote(token.val)


def parse_template(tree: _Tree) -> nd.TemplateNode:
    """Parse {{template "name" pipeline}}."""
    token = tree.next_non_space()
    name = template_name(tree, token, "template clause")
    pipe = None
    if tree.next_non_space().typ != lx.RIGHT_DELIM:
        tree.backup()
        pipe = tree.pipeline("template clause", lx.RIGHT_DELIM)
    return nd.TemplateNode(token.pos, token.line, name, pipe)


def parse_block(tree: _Tree) -> nd.TemplateNode:
    """Parse {{block "name" pipeline}} body {{end}}: define name and invoke it."""
    from .parser import _Tree as Tree

    context = "block clause"
    token = tree.next_non_space()
    name = template_name(tree, token, context)
    pipe = tree.pipeline(context, lx.RIGHT_DELIM)
    tree.enter("max nesting depth exceeded")
    block = Tree(name, tree.shared)
    block.root, end = block.item_list()
    if not isinstance(end, nd.EndNode):
        tree.errorf(f"unexpected {end} in {context}")
    block.add()
    tree.shared.depth -= 1
    return nd.TemplateNode(token.pos, token.line, name, pipe)
