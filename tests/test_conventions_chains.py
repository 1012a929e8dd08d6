"""Permutation folding: exact on every chain it folds (checked on tensors, and on random chains
with hypothesis), and left alone where the dimensions or the data flow are not known."""

import libcst as cst
import pytest
import torch
from conventions_sources import parse
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.porting.conventions.chains import fold_permutations


def _fold_expr(expr: str) -> str:
    module, _ = fold_permutations(cst.parse_module(f"y = {expr}\n"))
    return module.code.strip().removeprefix("y = ")


X = torch.randn(2, 3, 4, 5)


@pytest.mark.parametrize("expr, folded", [
    ("x.transpose(1, 2).permute(0, 2, 1, 3)", "x"),
    ("x.transpose(1, 2).transpose(2, 1)", "x"),
    ("x.permute(0, 2, 1, 3).permute(0, 3, 2, 1)", "x.permute(0, 3, 1, 2)"),
    ("x.permute(0, 2, 3, 1).permute(0, 2, 1, 3)", "x.transpose(1, 3)"),
    ("x.transpose(-1, -2).permute(0, 1, 3, 2)", "x"),
    ("x.swapaxes(0, 1).transpose(0, 1).flatten(2, 3)", "x.flatten(2, 3)"),
    ("(x + 1).transpose(1, 2).transpose(1, 2)", "(x + 1)"),
    ("f(x).permute(0, 2, 1, 3).permute((0, 2, 1, 3)).flatten(2)", "f(x).flatten(2)"),
    ("x.flatten(2, 3).flatten(1, 2)", "x.flatten(1, 3)"),
    ("x.flatten(1, 2).flatten(1, 2)", "x.flatten(1, 3)"),
    ("x.flatten(0, 1).flatten(0, 1)", "x.flatten(0, 2)"),
    ("x.unflatten(1, (3, 1)).flatten(1, 2)", "x"),
    ("x.transpose(1, 2).transpose(1, 2).unflatten(3, [5, 1]).flatten(3, 4)", "x"),
])
def test_folds_exactly(expr, folded):
    assert _fold_expr(expr) == folded
    env = {"x": X, "f": lambda t: t * 2}
    assert torch.equal(eval(expr, env), eval(folded, env))


@pytest.mark.parametrize("expr", [
    "x.transpose(1, 2).transpose(2, 3)",  # a 3-cycle: only permute could write it, and the rank is unknown
    "x.transpose(d, 2).transpose(1, 2)",  # a dimension that is not a literal
    "x.transpose(-1, 2).transpose(1, 2)",  # negative dims without a rank
    "x.transpose(1, 2).reshape(2, 4, 3, 5).transpose(1, 2)",  # not adjacent
    "x.permute(*dims).permute(0, 2, 1, 3)",
    "x.flatten(2, 3).flatten(0, 1)",  # separate dims: two flattens are needed
    "x.flatten(-2, -1).flatten(1, 2)",  # negative dims
    "x.unflatten(1, (3, 1)).flatten(2, 3)",  # not the dims it made
    "x.unflatten(1, sizes).flatten(1, 2)",
])
def test_leaves_what_it_cannot_prove(expr):
    assert _fold_expr(expr) == expr


def test_joins_the_dispatch_transpose_with_the_next_permute():
    src = '''
    def attend(q, k, v):
        x = dispatch_attention_fn(q, k, v).transpose(1, 2)
        x = x.permute(0, 2, 1, 3).flatten(2, 3)
        return x
    '''
    module, report = fold_permutations(parse(src))
    assert "x = dispatch_attention_fn(q, k, v).flatten(2, 3)\n" in module.code
    assert "joined 1 statement pair" in report.changes[0]


@pytest.mark.parametrize("second", [
    "x = x.permute(0, 2, 1, 3) + x",  # x read twice
    "y = x.permute(0, 2, 1, 3)",  # another name: x may be read later
    "x = x.permute(0, 2, 1, 3).flatten(n, 3)",  # an argument that is not a literal
    "x = x.reshape(2, 3, 4, 5)",  # nothing to fold after joining
])
def test_statements_not_joined(second):
    src = f"def f(a, n):\n    x = a.transpose(1, 2)\n    {second}\n    return x\n"
    module, report = fold_permutations(cst.parse_module(src))
    assert module.code == src and not report.changes


OPS = st.one_of(
    st.tuples(st.just("transpose"), st.integers(-4, 3), st.integers(-4, 3)),
    st.tuples(st.just("permute"), st.permutations(range(4))),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(OPS, min_size=2, max_size=5))
def test_random_chains_fold_to_the_same_tensor(ops):
    parts = []
    for op in ops:
        parts.append(f".transpose({op[1]}, {op[2]})" if op[0] == "transpose" else f".permute({', '.join(map(str, op[1]))})")
    expr = "x" + "".join(parts)
    folded = _fold_expr(expr)
    assert torch.equal(eval(expr, {"x": X}), eval(folded, {"x": X})), (expr, folded)
    assert folded.count("(") <= expr.count("(")


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_random_flatten_pairs_fold_to_the_same_tensor(data):
    x = torch.randn(2, 3, 1, 4, 5)
    a = data.draw(st.integers(0, 3))
    b = data.draw(st.integers(a, 4))
    c = data.draw(st.integers(0, 4 - (b - a)))
    d = data.draw(st.integers(c, 4 - (b - a)))
    expr = f"x.flatten({a}, {b}).flatten({c}, {d})"
    folded = _fold_expr(expr)
    assert torch.equal(eval(expr, {"x": x}), eval(folded, {"x": x})), (expr, folded)
