"""Fixed 2-D sine-cosine position embeddings: diffusers' `get_2d_sincos_pos_embed`, for a
reference function `f(embed_dim, grid_size, [cls_token, extra_tokens])` that returns the
[(extra +) grid * grid, embed_dim] table (as a numpy array or a tensor).

diffusers scales the grid by `grid_size / base_size`; `base_size=grid_size` makes that 1, which
is what MAE/DiT-style references compute. diffusers returns a tensor; where the reference
returned numpy the codemod drops the `torch.from_numpy` around the result.
"""

from __future__ import annotations

from typing import Any

from .base import BlockCode, Call, Family, Proposal, Scalar, grid, neutral

EMBEDDINGS = "diffusers.models.embeddings"


def _table(output: Any) -> tuple[int, int] | None:
    shape = getattr(output, "shape", None)
    return (int(shape[0]), int(shape[1])) if shape is not None and len(shape) == 2 else None


class SinCos2DFamily(Family):
    name = "sincos-2d"
    block = "get_2d_sincos_pos_embed"
    kind = "function"

    def choices(self) -> list[dict[str, Scalar]]:
        return grid(numpy=(True, False), extra=(False, True))

    def propose(self, fn: Any, calls: list[Call]) -> list[Proposal] | str:
        import numpy as np

        if not calls:
            return "never called"
        params = calls[0].params
        tables = [_table(c.output) for c in calls]
        if None in tables:
            return "it does not return a 2-D table"
        ints = [p for p in params if all(type(c.bound.get(p)) is int for c in calls)]
        width = [p for p in ints if all(c.bound[p] == t[1] for c, t in zip(calls, tables, strict=True))]
        cls_param = next((p for p in params if p == "cls_token"), None)
        extra_param = next((p for p in params if p == "extra_tokens"), None)

        def extra(c: Call) -> int:
            return c.bound[extra_param] if extra_param and c.bound.get(cls_param) and c.bound[extra_param] > 0 else 0

        sides = [p for p in ints if p not in width[:1] and p != extra_param
                 and all(c.bound[p] ** 2 + extra(c) == t[0] for c, t in zip(calls, tables, strict=True))]
        if not width or not sides:
            return "no arguments give the embedding width and the grid side"
        roles: dict[str, Scalar] = {"embed_dim": width[0], "grid_size": sides[0]}
        has_extra = bool(cls_param and extra_param)
        if has_extra:
            roles.update(cls_token=cls_param, extra_tokens=extra_param)
        ignore = tuple(p for p in params if p not in roles.values())
        if not all(neutral(c.bound.get(p)) for c in calls for p in ignore):
            return f"it is called with {', '.join(ignore)} set (the block has no such option)"
        numpy = all(isinstance(c.output, np.ndarray) for c in calls)
        return [Proposal({"numpy": numpy, "extra": has_extra}, roles, ignore)]

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        args = "{embed_dim}, {grid_size}"
        if choice["extra"]:
            args += ", cls_token={cls_token}, extra_tokens={extra_tokens}"
        return BlockCode(
            imports=((EMBEDDINGS, "get_2d_sincos_pos_embed"),),
            main=f"get_2d_sincos_pos_embed({args}, base_size={{grid_size}})",
            numpy_to_torch=bool(choice["numpy"]),
        )
