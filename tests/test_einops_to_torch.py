"""The einops translation equals einops' result exactly: fixed cases and random patterns."""

import einops
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.porting.einops_to_torch import Untranslatable, translate

NAMES = "abcdef"


def run(kind, pattern, x, sizes, reduction=None):
    code = translate(kind, pattern, "x", {k: str(v) for k, v in sizes.items()}, reduction)
    got = eval(code, {"x": x, "torch": torch})
    if kind == "reduce":
        expected = einops.reduce(x, pattern, reduction, **sizes)
    else:
        expected = getattr(einops, kind)(x, pattern, **sizes)
    return code, got, expected


@st.composite
def cases(draw):
    kind = draw(st.sampled_from(["rearrange", "repeat", "reduce"]))
    n = draw(st.integers(1, 5))
    axes = list(NAMES[:n])
    size = {a: draw(st.integers(1, 4)) for a in axes}
    ellipsis = draw(st.booleans())
    ell_shape = draw(st.lists(st.integers(1, 3), max_size=2)) if ellipsis else []

    def grouping(order):
        groups, i = [], 0
        while i < len(order):
            width = draw(st.integers(1, min(3, len(order) - i)))
            groups.append(order[i:i + width])
            i += width
        return groups

    left = grouping(draw(st.permutations(axes)))
    right_axes = list(draw(st.permutations(axes)))
    reduction = None
    sizes = {}
    if kind == "reduce":
        keep = draw(st.lists(st.sampled_from(axes), unique=True))
        right_axes = [a for a in right_axes if a in keep]
        reduction = draw(st.sampled_from(["sum", "mean", "max", "min", "prod"]))
    if kind == "repeat":
        for new in draw(st.lists(st.sampled_from("uvw"), unique=True, min_size=1, max_size=2)):
            right_axes.insert(draw(st.integers(0, len(right_axes))), new)
            sizes[new] = draw(st.integers(1, 3))
    right = grouping(right_axes) if right_axes else []
    if draw(st.booleans()):  # a unit axis on the output
        right.insert(draw(st.integers(0, len(right))), [])

    for g in left:  # sizes for composite input groups: all but one axis
        if len(g) > 1:
            skip = draw(st.sampled_from(g))
            sizes.update({a: size[a] for a in g if a != skip})

    def render(groups, ell_at):
        parts = []
        for g in groups:
            parts.append("1" if not g else g[0] if len(g) == 1 else "(" + " ".join(g) + ")")
        if ell_at is not None:
            parts.insert(ell_at, "...")
        return " ".join(parts)

    l_ell = draw(st.integers(0, len(left))) if ellipsis else None
    r_ell = draw(st.integers(0, len(right))) if ellipsis else None
    pattern = f"{render(left, l_ell)} -> {render(right, r_ell)}"
    shape = [1] * 0
    for i, g in enumerate(left):
        if ellipsis and i == l_ell:
            shape += ell_shape
        prod = 1
        for a in g:
            prod *= size[a]
        shape.append(prod)
    if ellipsis and l_ell == len(left):
        shape += ell_shape
    return kind, pattern, shape, sizes, reduction


@settings(max_examples=400, deadline=None)
@given(cases())
def test_random_patterns_match_einops_exactly(case):
    kind, pattern, shape, sizes, reduction = case
    g = torch.Generator().manual_seed(0)
    # integer-valued data: every reduction is exact whatever the summation order
    x = torch.randint(-3, 4, shape, generator=g).double() if kind == "reduce" else torch.randn(shape, generator=g)
    code, got, expected = run(kind, pattern, x, sizes, reduction)  # every generated case is translatable
    assert got.shape == expected.shape, (pattern, code)
    assert torch.equal(got, expected), (pattern, code)


@pytest.mark.parametrize("kind, pattern, shape, sizes", [
    ("rearrange", "b n (three h d) -> three b h n d", (2, 5, 96), {"three": 3, "h": 4}),
    ("rearrange", "b h n d -> b n (h d)", (2, 4, 5, 8), {}),
    ("rearrange", "b c h w -> b (h w) c", (2, 3, 4, 5), {}),
    ("rearrange", "b (h w) (p1 p2 c) -> b c (h p1) (w p2)", (2, 6, 20), {"h": 2, "w": 3, "p1": 2, "p2": 2}),
    ("rearrange", "b ... c -> c ... b", (2, 3, 4, 5), {}),
    ("repeat", "h w -> (r h) w", (2, 3), {"r": 2}),
    ("repeat", "... w -> ... (w r)", (2, 3, 4), {"r": 2}),
])
def test_known_patterns(kind, pattern, shape, sizes):
    code, got, expected = run(kind, pattern, torch.randn(shape), sizes)
    assert torch.equal(got, expected), code
    assert "einops" not in code


@pytest.mark.parametrize("pattern, reason", [
    ("b (h w) -> b h w", "two unknown sizes"),
    ("b c -> b c d", "same axes"),
    ("b (h (w)) -> b h w", "nested"),
    ("b c", "no '->'"),
])
def test_untranslatable_patterns_are_refused(pattern, reason):
    with pytest.raises(Untranslatable, match=reason):
        translate("rearrange", pattern, "x", {})
