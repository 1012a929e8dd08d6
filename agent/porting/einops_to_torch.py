"""Translate einops `rearrange` / `repeat` / `reduce` patterns into native torch, exactly.

`translate(kind, pattern, tensor, sizes)` returns a torch expression (as source code) whose
result equals einops' result element for element: the same values in the same layout, built from
`unflatten`, `squeeze`, `permute`/`movedim`, reductions (`sum`/`mean`/`amax`/`amin`/`prod`),
`unsqueeze`/`expand`/`repeat_interleave` and `flatten`. `sizes` maps axis names to the source
of their size expressions (the keyword arguments of the einops call). Anything it cannot
express exactly raises `Untranslatable` with the reason; it never approximates.

Stands on its own: no dependency on the rest of integrate, and none on einops.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ELLIPSIS = "..."
REDUCTIONS = {"sum": "sum", "mean": "mean", "max": "amax", "min": "amin", "prod": "prod"}
_TOKEN = re.compile(r"\.\.\.|\(|\)|[A-Za-z_][A-Za-z0-9_]*|\d+|\S")
_SIMPLE_EXPR = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*(\[[^\[\]]*\]|\([^()]*\))*$")


class Untranslatable(ValueError):
    """The pattern has no exact torch translation here; the reason says why."""


@dataclass(frozen=True)
class Axis:
    name: str
    size: str | None = None  # known size source (a literal for anonymous axes)


Group = list  # list[Axis]; an empty group is a unit axis ("1" or "()"); [Axis("...")] the ellipsis


def parse_side(text: str) -> list[Group]:
    groups: list[Group] = []
    current: Group | None = None
    anon = 0
    for tok in _TOKEN.findall(text):
        if tok == "(":
            if current is not None:
                raise Untranslatable("nested parentheses")
            current = []
        elif tok == ")":
            if current is None:
                raise Untranslatable("unbalanced parentheses")
            groups.append(current)
            current = None
        elif tok == ELLIPSIS:
            if current is not None:
                raise Untranslatable("an ellipsis inside parentheses")
            groups.append([Axis(ELLIPSIS)])
        elif tok.isdigit():
            axis = None if tok == "1" else Axis(f"_anon{anon}_{tok}", tok)
            anon += axis is not None
            target = current if current is not None else None
            if target is None:
                groups.append([] if axis is None else [axis])
            elif axis is not None:
                target.append(axis)
        elif re.match(r"[A-Za-z_]", tok):
            if current is not None:
                current.append(Axis(tok))
            else:
                groups.append([Axis(tok)])
        else:
            raise Untranslatable(f"unexpected {tok!r} in pattern")
    if current is not None:
        raise Untranslatable("unbalanced parentheses")
    return groups


def _names(groups: list[Group]) -> list[str]:
    return [a.name for g in groups for a in g]


class _Chain:
    """The expression being built and the symbolic layout of its dimensions."""

    def __init__(self, tensor: str, layout: list[str]):
        self.code = tensor if _SIMPLE_EXPR.match(tensor) else f"({tensor})"
        self.layout = layout  # elementary axis names, "..." for the ellipsis block

    def index(self, position: int) -> int:
        """Dim index of layout[position]: from the left before the ellipsis, from the right after."""
        if ELLIPSIS in self.layout and position > self.layout.index(ELLIPSIS):
            return position - len(self.layout)
        return position

    def call(self, method: str, *args: str) -> None:
        self.code = f"{self.code}.{method}({', '.join(args)})"


def _tuple(items) -> str:
    items = [str(i) for i in items]
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def _size_tuple(axes: list[Axis], sizes: dict[str, str], what: str) -> str:
    known = [sizes.get(a.name, a.size) for a in axes]
    unknown = [a.name for a, s in zip(axes, known, strict=True) if s is None]
    if len(unknown) > 1:
        raise Untranslatable(f"two unknown sizes ({', '.join(unknown)}) in the group ({' '.join(a.name for a in axes)}) of {what}")
    return _tuple(s if s is not None else "-1" for s in known)


def translate(kind: str, pattern: str, tensor: str, sizes: dict[str, str] | None = None, reduction: str | None = None) -> str:
    sizes = dict(sizes or {})
    if "->" not in pattern:
        raise Untranslatable("pattern has no '->'")
    left_text, right_text = pattern.split("->")
    left, right = parse_side(left_text), parse_side(right_text)
    lnames, rnames = _names(left), _names(right)
    for side, names in (("left", lnames), ("right", rnames)):
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise Untranslatable(f"axis {sorted(dupes)[0]} repeated on the {side} side")
    if (ELLIPSIS in lnames) != (ELLIPSIS in rnames):
        raise Untranslatable("ellipsis on one side only (reducing over an ellipsis is not supported)")

    if kind == "rearrange":
        if set(lnames) != set(rnames):
            raise Untranslatable("rearrange needs the same axes on both sides")
    elif kind == "reduce":
        if reduction not in REDUCTIONS:
            raise Untranslatable(f"reduction {reduction!r} (supported: {', '.join(REDUCTIONS)})")
        if not set(rnames) <= set(lnames):
            raise Untranslatable("reduce output has axes the input does not")
    elif kind == "repeat":
        if not set(lnames) <= set(rnames):
            raise Untranslatable("repeat input has axes the output does not")
        for axis in (a for g in right for a in g):
            if axis.name not in lnames and sizes.get(axis.name, axis.size) is None:
                raise Untranslatable(f"repeat needs the size of new axis {axis.name}")
    else:
        raise Untranslatable(f"unknown einops function {kind}")
    if any(a.size for g in left for a in g) and kind != "reduce":
        raise Untranslatable("anonymous sized axes on the input side")
    if any(a.size for g in right for a in g) and kind != "repeat":
        raise Untranslatable("anonymous sized axes on the output side")

    chain = _Chain(tensor, [])
    # 1. Decompose the input: one layout entry per input dim, then split groups, drop units.
    chain.layout = ["<unit>" if not g else (g[0].name if len(g) == 1 else f"<group{i}>") for i, g in enumerate(left)]
    for pos in reversed(range(len(left))):  # right to left: earlier positions stay valid
        group = left[pos]
        if not group:
            chain.call("squeeze", str(chain.index(pos)))
            del chain.layout[pos]
        elif len(group) > 1:
            chain.call("unflatten", str(chain.index(pos)), _size_tuple(group, sizes, "the input"))
            chain.layout[pos:pos + 1] = [a.name for a in group]

    # 2. Reduce the axes that the output does not keep.
    if kind == "reduce":
        gone = [n for n in chain.layout if n != ELLIPSIS and n not in rnames]
        if gone:
            dims = [chain.index(chain.layout.index(n)) for n in gone]
            if reduction == "prod":  # torch.prod reduces one dim at a time; go so indices stay valid
                for d in sorted(d for d in dims if d >= 0)[::-1] + sorted(d for d in dims if d < 0):
                    chain.call("prod", f"dim={d}")
            else:
                chain.call(REDUCTIONS[reduction], "dim=" + (_tuple(dims) if len(dims) > 1 else str(dims[0])))
            chain.layout = [n for n in chain.layout if n not in gone]

    # 3. Reorder the kept axes into output order.
    target = [n for n in rnames if n in chain.layout]
    if target != chain.layout:
        if ELLIPSIS not in target:
            chain.call("permute", *(str(chain.layout.index(n)) for n in target))
        else:
            named = [n for n in target if n != ELLIPSIS]
            src = [chain.index(chain.layout.index(n)) for n in named]
            after = _Chain("", target)
            dst = [after.index(target.index(n)) for n in named]
            chain.call("movedim", _tuple(src), _tuple(dst))
        chain.layout = target

    # 4. New axes (repeat) and unit axes, in output order.
    out_axes = [a for g in right for a in g]
    new_axes: list[tuple[int, str]] = []
    flat: list[str] = []
    for gi, group in enumerate(right):
        if not group:
            flat.append(f"<unit{gi}>")
        for a in group:
            flat.append(a.name)
    for pos, name in enumerate(flat):
        if name not in chain.layout:
            chain.layout.insert(pos, name)
            chain.call("unsqueeze", str(chain.index(pos)))  # a negative dim counts in the output
            axis = next((a for a in out_axes if a.name == name), None)
            if axis is not None:
                new_axes.append((pos, sizes.get(name, axis.size)))
    if new_axes:
        if ELLIPSIS not in chain.layout:
            shape = ["-1"] * len(chain.layout)
            for pos, size in new_axes:
                shape[pos] = size
            chain.call("expand", *shape)
        else:
            for pos, size in new_axes:
                chain.call("repeat_interleave", size, f"dim={chain.index(pos)}")

    # 5. Compose output groups (right to left keeps earlier indices valid).
    starts = []
    pos = 0
    for group in right:
        width = max(len(group), 1)
        starts.append((pos, width))
        pos += width
    for start, width in reversed(starts):
        if width > 1:
            chain.call("flatten", str(chain.index(start)), str(chain.index(start + width - 1)))
            chain.layout[start:start + width] = ["<composed>"]
    return chain.code
