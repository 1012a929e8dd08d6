"""Gradient checkpointing changes memory, not results.

For a class that declares `_supports_gradient_checkpointing`, the same scalar loss (the outputs
weighted by fixed random tensors, summed) is backpropagated through two copies of the port in
training mode, one with `enable_gradient_checkpointing()`. Every parameter's and float input's
gradient, and the outputs, must agree within the port's tolerance (scaled by the gradients'
size), the same tensors must receive gradients, and the checkpointing function handed to
`enable_gradient_checkpointing` must actually be called: a flag with no branch behind it proves
nothing."""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch
import torch.utils.checkpoint

from sandbox.compliance.port import INPUT_SEEDS, Port, compare_tensors, max_abs_diff, output_tensors, within
from sandbox.compliance.result import CheckResult, failed, passed, skipped

NAME = "gradient_checkpointing"
TITLE = "gradient checkpointing equivalence"
LOSS_SEED = 31


def _loss(out: Any) -> torch.Tensor | None:
    g = torch.Generator().manual_seed(LOSS_SEED)
    terms = [
        (t.float() * torch.randn(t.shape, generator=g).to(t.device)).sum()
        for _, t in output_tensors(out) if t.is_floating_point() and t.requires_grad
    ]
    return torch.stack(terms).sum() if terms else None


def _run(port: Port, kwargs: dict[str, Any], checkpointing: bool) -> tuple[list[tuple[str, torch.Tensor]], dict[str, torch.Tensor | None], list[str]]:
    model = port.model().train()
    calls: list[str] = []
    if checkpointing:
        def counting_checkpoint(module, *args, **kw):
            calls.append(type(module).__name__)
            return torch.utils.checkpoint.checkpoint(module.__call__, *args, use_reentrant=False, **kw)

        model.enable_gradient_checkpointing(counting_checkpoint)
    inputs = {k: v.detach().clone().requires_grad_(True) if isinstance(v, torch.Tensor) and v.is_floating_point() else v for k, v in kwargs.items()}
    out = port.forward(model, inputs, grad=True)
    loss = _loss(out)
    if loss is None:
        raise RuntimeError("no output tensor requires grad: nothing to backpropagate")
    loss.backward()
    grads = {f"parameter {n}": p.grad for n, p in model.named_parameters() if p.requires_grad}
    grads.update({f"input {k}": v.grad for k, v in inputs.items() if isinstance(v, torch.Tensor) and v.requires_grad})
    # detached: the output's graph would keep this copy of the port alive during the other run
    return [(path, t.detach()) for path, t in output_tensors(out)], grads, calls


def check(port: Port) -> CheckResult:
    if not getattr(port.cls, "_supports_gradient_checkpointing", False):
        return skipped("the class does not declare _supports_gradient_checkpointing")
    kwargs = port.inputs(INPUT_SEEDS[0])
    out_off, grads_off, _ = _run(port, kwargs, checkpointing=False)
    try:
        out_on, grads_on, calls = _run(port, kwargs, checkpointing=True)
    except ValueError as exc:  # diffusers: no module has a `gradient_checkpointing` attribute
        return failed(f"enable_gradient_checkpointing() fails: {exc}"[:400], error=str(exc)[:400])
    scale = max([float(g.abs().max()) for g in grads_off.values() if g is not None and g.numel()] + [1.0])
    limit = port.tolerance * scale
    only_off = sorted(k for k, g in grads_off.items() if g is not None and grads_on.get(k) is None)
    only_on = sorted(k for k, g in grads_on.items() if g is not None and grads_off.get(k) is None)
    diffs = sorted(
        ((max_abs_diff(g, grads_on[k]), k) for k, g in grads_off.items() if g is not None and grads_on.get(k) is not None),
        key=lambda x: (x[0] != x[0], x[0]), reverse=True,
    )
    output = compare_tensors(out_off, out_on)
    evidence = {
        "checkpointed_calls": len(calls), "checkpointed_modules": dict(Counter(calls)),
        "gradients_compared": len(diffs), "tolerance": limit, "gradient_scale": scale,
        "worst_gradients": [{"tensor": k, "max_abs_diff": d} for d, k in diffs[:5]],
        "gradient_only_without_checkpointing": only_off[:20], "gradient_only_with_checkpointing": only_on[:20],
        "output": output, "input_seed": INPUT_SEEDS[0],
    }
    if not calls:
        return failed("enable_gradient_checkpointing() changes nothing: the checkpointing function is never called in the forward", **evidence)
    problems = []
    if not within(output["max_abs_diff"], port.tolerance):
        problems.append(f"outputs differ with checkpointing: {output['tensor']} max abs {output['max_abs_diff']:.3g}")
    if only_off:
        problems.append(f"{len(only_off)} tensors get no gradient with checkpointing on (first: {only_off[0]})")
    if only_on:
        problems.append(f"{len(only_on)} tensors get a gradient only with checkpointing on (first: {only_on[0]})")
    if diffs and not within(diffs[0][0], limit):
        problems.append(f"gradients differ: {diffs[0][1]} max abs {diffs[0][0]:.3g} > {limit:.3g}")
    if problems:
        return failed("; ".join(problems), **evidence)
    worst = diffs[0][0] if diffs else 0.0
    return passed(f"{len(diffs)} gradients equal with and without checkpointing (max abs {worst:.3g}); {len(calls)} checkpointed calls", **evidence)
