"""Fold adjacent axis permutations the codemods left (`.transpose(1, 2).permute(0, 2, 1, 3)`):
a run of `transpose`/`permute`/`swapaxes` calls with literal dimensions is one permutation; it
is written as nothing (identity), one `transpose`, or one `permute`. Two flattens over
overlapping dims are one flatten, and an unflatten undone by the next flatten is nothing. Two statements
`x = A.transpose(1, 2)` / `x = x.permute(...)...` are joined first when the second is the only
reader of the first's value, so the SDPA-to-dispatch rewrite's closing `transpose` meets the
reference's own permute. Folding is exact: the same elements end up at the same indices.
"""

from __future__ import annotations

import libcst as cst
import libcst.matchers as m

from agent.porting.conventions.cstutil import code
from agent.porting.conventions.report import GroupReport

PERMUTING = {"transpose", "permute", "swapaxes", "swapdims"}


def _ints(args: list[cst.Arg]) -> list[int] | None:
    values = [a.value for a in args]
    if len(values) == 1 and isinstance(values[0], (cst.Tuple, cst.List)):
        values = [e.value for e in values[0].elements]
    out = []
    for v in values:
        negative = isinstance(v, cst.UnaryOperation) and isinstance(v.operator, cst.Minus)
        node = v.expression if negative else v
        if not isinstance(node, cst.Integer) or any(a.keyword for a in args) or any(a.star for a in args):
            return None
        out.append(-int(node.value) if negative else int(node.value))
    return out


def _op(call: cst.BaseExpression) -> tuple[str, list[int], cst.BaseExpression] | None:
    """(method, literal dims, receiver) of `receiver.method(dims)` for a permuting method."""
    if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and call.func.attr.value in PERMUTING):
        return None
    dims = _ints(list(call.args))
    if dims is None:
        return None
    name = call.func.attr.value
    if name == "permute" and len(dims) != len(set(dims)):
        return None
    if name != "permute" and len(dims) != 2:
        return None
    return name, dims, call.func.value


def _compose(ops: list[tuple[str, list[int]]]) -> list[int] | None:
    """The permutation p (output dim i = input dim p[i]) of applying `ops` in order, or None
    when the rank is unknown and the dimensions cannot be placed."""
    rank = next((len(d) for name, d in ops if name == "permute"), None)
    if rank is None:
        if any(x < 0 for _, d in ops for x in d):
            return None
        rank = max(x for _, d in ops for x in d) + 1  # transposes only: act on a prefix of the dims
    perm = list(range(rank))
    for name, dims in ops:
        dims = [x + rank if x < 0 else x for x in dims]
        if any(x < 0 or x >= rank for x in dims):
            return None
        if name == "permute":
            if len(dims) != rank:
                return None
            perm = [perm[d] for d in dims]
        else:
            a, b = dims
            perm[a], perm[b] = perm[b], perm[a]
    return perm


def _written(perm: list[int], known_rank: bool) -> str | None:
    """The shortest call for `perm`: "" (identity), ".transpose(a, b)" or ".permute(...)"."""
    moved = [i for i, p in enumerate(perm) if p != i]
    if not moved:
        return ""
    if len(moved) == 2:
        return f".transpose({moved[0]}, {moved[1]})"
    return f".permute({', '.join(map(str, perm))})" if known_rank else None


def _method(node: cst.BaseExpression, name: str) -> tuple[list[cst.Arg], cst.BaseExpression] | None:
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value == name:
        return list(node.args), node.func.value
    return None


def _fold_flatten(call: cst.Call) -> str | None:
    """`.flatten(a, b).flatten(c, d)` with c <= a <= d is one flatten; `.unflatten(d, sizes)`
    followed by the flatten of exactly those dims is nothing. Non-negative literals only."""
    outer = _method(call, "flatten")
    if outer is None:
        return None
    dims = _ints(outer[0])
    if dims is None or len(dims) != 2 or min(dims) < 0:
        return None
    c, d = dims
    inner = _method(outer[1], "flatten")
    if inner is not None:
        inner_dims = _ints(inner[0])
        if inner_dims and len(inner_dims) == 2 and min(inner_dims) >= 0 and c <= inner_dims[0] <= d:
            a, b = inner_dims
            return f"{code(inner[1])}.flatten({c}, {d + b - a})"
        return None
    inner = _method(outer[1], "unflatten")
    if inner is not None and len(inner[0]) == 2 and not any(a.keyword or a.star for a in inner[0]):
        at, sizes = _ints(inner[0][:1]), inner[0][1].value
        if at and at[0] >= 0 and isinstance(sizes, (cst.Tuple, cst.List)) and (c, d) == (at[0], at[0] + len(sizes.elements) - 1):
            return code(inner[1])
    return None


class _Fold(cst.CSTTransformer):
    def __init__(self) -> None:
        self.folded: list[str] = []

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        flat = _fold_flatten(updated)
        if flat is not None:
            self.folded.append(f"{code(updated)} -> {flat}")
            return cst.parse_expression(flat)
        ops = []
        node: cst.BaseExpression = updated
        while (op := _op(node)) is not None:
            ops.append((op[0], op[1]))
            node = op[2]
        if len(ops) < 2 or node is updated:
            return updated
        # fold only the outermost run ending here; shorter runs inside were already tried
        ops.reverse()
        perm = _compose(ops)
        if perm is None:
            return updated
        written = _written(perm, any(name == "permute" for name, _ in ops))
        if written is None or written.count("(") >= len(ops):
            return updated
        before = code(updated)
        result = cst.parse_expression(f"({code(node)}){written}" if written else code(node))
        if isinstance(result, cst.Call) and isinstance(result.func, cst.Attribute) and isinstance(result.func.value, (cst.Name, cst.Call, cst.Attribute, cst.Subscript)):
            result = result.with_changes(func=result.func.with_changes(value=result.func.value.with_changes(lpar=[], rpar=[])))
        self.folded.append(f"{before} -> {code(result)}")
        return result


def _join_statements(block: list[cst.BaseStatement]) -> tuple[list[cst.BaseStatement], int]:
    """`x = A.<perm>` followed by `x = x.<perm>...` (x read once, as the head) -> one statement."""
    out: list[cst.BaseStatement] = []
    joined = 0
    i = 0
    while i < len(block):
        stmt = block[i]
        nxt = block[i + 1] if i + 1 < len(block) else None
        pair = _joinable(stmt, nxt) if nxt is not None else None
        if pair is not None:
            out.append(pair)
            joined += 1
            i += 2
            continue
        out.append(stmt)
        i += 1
    return out, joined


_SINGLE_ASSIGN = m.SimpleStatementLine(body=[m.Assign(targets=[m.AssignTarget(m.Name())])])


def _joinable(first: cst.BaseStatement, second: cst.BaseStatement) -> cst.BaseStatement | None:
    if not (m.matches(first, _SINGLE_ASSIGN) and m.matches(second, _SINGLE_ASSIGN)):
        return None
    name = first.body[0].targets[0].target.value
    if second.body[0].targets[0].target.value != name or _op(first.body[0].value) is None:
        return None
    value = second.body[0].value
    chain: list[cst.Call] = []
    node = value
    while isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        chain.append(node)
        node = node.func.value
    if not m.matches(node, m.Name(name)) or not chain or _op(chain[-1]) is None:
        return None
    if len(m.findall(value, m.Name(name))) != 1:
        return None
    if any(not all(isinstance(a.value, (cst.Integer, cst.UnaryOperation, cst.Tuple)) for a in c.args) for c in chain):
        return None  # every argument after the head is a literal: nothing is evaluated out of order
    head = first.body[0].value
    joined = cst.parse_expression(code(value).replace(name, f"({code(head)})", 1)) if code(value).startswith(name) else None
    if joined is None:
        return None
    folder = _Fold()
    folded = joined.visit(folder)
    if not folder.folded:
        return None
    return second.with_changes(body=[second.body[0].with_changes(value=folded)], leading_lines=first.leading_lines)


class _Blocks(cst.CSTTransformer):
    def __init__(self) -> None:
        self.joined = 0

    def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
        body, joined = _join_statements(list(updated.body))
        self.joined += joined
        return updated.with_changes(body=body) if joined else updated


def fold_permutations(module: cst.Module) -> tuple[cst.Module, GroupReport]:
    report = GroupReport("permutations")
    blocks = _Blocks()
    module = module.visit(blocks)
    folder = _Fold()
    module = module.visit(folder)
    if blocks.joined:
        report.changed(f"joined {blocks.joined} statement pair(s) whose permutations cancel")
    for item in folder.folded:
        report.changed(f"folded {item}")
    return module, report
