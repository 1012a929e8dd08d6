"""The engine's traversal skips fields that never hold a node: it must still reach every node
ast.walk reaches (except the shared Load/Store/Del context nodes), on code using every construct."""

import ast
from pathlib import Path

from agent.checks.registry import child_nodes, walk

SOURCE = '''
import a.b as c
from . import d
@dec(x=1)
class K(Base, metaclass=M):
    x: int = 1
    async def f(self, p, /, q=2, *args, r, **kw) -> "T":
        global g
        y = {**kw, "k": [i async for i in q if i]}
        z = f"{p!r:>{q}}" + (lambda s: s)(1)[1:2, ::3]
        match p:
            case {"a": [1, *rest]} | K(x=0) as m if m:
                pass
            case _:
                del y
        try:
            async with c as (u, v):
                yield from z
        except* E as e:
            raise e from None
        finally:
            while not (w := 1):
                break
        return await q
'''


def _reference(tree):
    return [n for n in ast.walk(tree) if not isinstance(n, ast.expr_context)]


def test_walk_is_ast_walk_without_context_nodes():
    for tree in (ast.parse(SOURCE), ast.parse(Path(ast.__file__).read_text())):
        got = walk(tree)
        assert [id(n) for n in got] == [id(n) for n in _reference(tree)]  # same nodes, same (breadth-first) order


def test_child_nodes_are_iter_child_nodes_without_context():
    for node in ast.walk(ast.parse(SOURCE)):
        expected = [c for c in ast.iter_child_nodes(node) if not isinstance(c, ast.expr_context)]
        assert child_nodes(node) == expected
