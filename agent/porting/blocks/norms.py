"""Normalisation over the last dimension: diffusers' `RMSNorm`, and torch's `nn.LayerNorm` (what
diffusers models use for layer norm) for hand-written layer norms.

eps comes from the module's attribute when it has one, else the usual values are tried; whether
the norm has a scale (and a shift) comes from its parameters.
"""

from __future__ import annotations

from typing import Any

from .base import BlockCode, Call, Family, Proposal, Scalar, float_attr, grid, is_tensor

NORMALIZATION = "diffusers.models.normalization"
EPS_NAMES = ("eps", "epsilon", "variance_epsilon", "norm_eps")
USUAL_EPS = (1e-6, 1e-5, 1e-8)


def _vector_params(module: Any) -> dict[str, int] | str:
    params = dict(module.named_parameters())
    if any(p.dim() != 1 for p in params.values()):
        return "it has parameters that are not per-channel vectors"
    widths = {p.shape[0] for p in params.values()}
    if len(widths) > 1 or len(params) > 2:
        return "its parameters are not one scale (and one shift) of one width"
    return {n: p.shape[0] for n, p in params.items()}


def _same_shape_calls(calls: list[Call]) -> int | str:
    if not calls or not all(is_tensor(c.positional(0), floating=True) and is_tensor(c.output) and c.output.shape == c.positional(0).shape for c in calls):
        return "its output does not have its input's shape"
    if any(len(c.args) + len(c.kwargs) > 1 for c in calls):
        return "it is called with more than the tensor to normalise"
    widths = {c.positional(0).shape[-1] for c in calls}
    return widths.pop() if len(widths) == 1 else "the width of its input varies"


def _eps_values(module: Any) -> list[float]:
    own = float_attr(module, EPS_NAMES)
    return [own] if own is not None else list(USUAL_EPS)


class RMSNormFamily(Family):
    name = "rms-norm"
    block = "RMSNorm"
    aliases = {"dim": ("dim", "hidden", "channels", "size", "features"), "eps": ("eps", "epsilon")}

    def choices(self) -> list[dict[str, Scalar]]:
        return grid(affine=(True, False), bias=(False, True))

    def propose(self, module: Any, calls: list[Call]) -> list[Proposal] | str:
        params = _vector_params(module)
        if isinstance(params, str):
            return params
        width = _same_shape_calls(calls)
        if isinstance(width, str):
            return width
        if params and set(params.values()) != {width}:
            return f"its scale has width {next(iter(params.values()))}, its input {width}"
        choice = {"affine": bool(params), "bias": len(params) == 2}
        return [Proposal(choice, {"dim": width, "eps": eps}) for eps in _eps_values(module)]

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        args = "{dim}, eps={eps}"
        if not choice["affine"]:
            args += ", elementwise_affine=False"
        elif choice["bias"]:
            args += ", bias=True"
        return BlockCode(imports=((NORMALIZATION, "RMSNorm"),), main=f"RMSNorm({args})")


class LayerNormFamily(Family):
    name = "layer-norm"
    block = "nn.LayerNorm"
    origin = "torch"
    aliases = RMSNormFamily.aliases

    def choices(self) -> list[dict[str, Scalar]]:
        return grid(affine=(True, False), bias=(True, False))

    def propose(self, module: Any, calls: list[Call]) -> list[Proposal] | str:
        from torch import nn

        if isinstance(module, nn.LayerNorm) and type(module).forward is nn.LayerNorm.forward:
            return "it is torch's LayerNorm already"
        params = _vector_params(module)
        if isinstance(params, str):
            return params
        width = _same_shape_calls(calls)
        if isinstance(width, str):
            return width
        if params and set(params.values()) != {width}:
            return f"its parameters have width {next(iter(params.values()))}, the last axis of its input {width}"
        choice = {"affine": bool(params), "bias": len(params) == 2}
        return [Proposal(choice, {"dim": width, "eps": eps}) for eps in _eps_values(module)]

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        args = "{dim}, eps={eps}"
        if not choice["affine"]:
            args += ", elementwise_affine=False"
        elif not choice["bias"]:
            args += ", bias=False"
        return BlockCode(imports=(("torch", "nn"),), main=f"nn.LayerNorm({args})")
