"""Each sample's output is the same alone as batched with another sample.

The batch is made of two *different* seeded samples: the first sample of input set 0 and the
first sample of input set 1. An input is batched when its leading size equals the batch size of
the inputs (that of `hidden_states`, or of the first tensor argument) in both sets; other
arguments are shared, taken from set 0, alike for the batch and for each sample alone. Every
output tensor whose leading size is the batch size is compared row by row, at the port's
tolerance. Catches ports that mix samples: statistics over the batch dimension, a reshape that
folds the batch into another axis, a broadcast over the wrong dimension."""

from __future__ import annotations

from typing import Any

import torch

from sandbox.compliance.port import INPUT_SEEDS, Port, max_abs_diff, output_tensors, within
from sandbox.compliance.result import CheckResult, failed, passed, skipped

NAME = "batch_independence"
TITLE = "batch independence"


def batch_size(kwargs: dict[str, Any]) -> int | None:
    lead = kwargs.get("hidden_states")
    if not (isinstance(lead, torch.Tensor) and lead.dim() >= 1):
        lead = next((v for v in kwargs.values() if isinstance(v, torch.Tensor) and v.dim() >= 1), None)
    return None if lead is None else int(lead.shape[0])


def batched_names(a: dict[str, Any], b: dict[str, Any], size: int) -> list[str]:
    return [
        k for k, v in a.items()
        if isinstance(v, torch.Tensor) and v.dim() >= 1 and v.shape[0] == size
        and isinstance(b.get(k), torch.Tensor) and b[k].shape == v.shape
    ]


def check(port: Port) -> CheckResult:
    a, b = port.inputs(INPUT_SEEDS[0]), port.inputs(INPUT_SEEDS[1])
    size = batch_size(a)
    if size is None:
        return skipped("no input tensor has a batch dimension")
    names = batched_names(a, b, size)
    if all(torch.equal(a[k][:1], b[k][:1]) for k in names):
        return skipped(f"input sets {INPUT_SEEDS[0]} and {INPUT_SEEDS[1]} give the same first sample: no batch of different samples")
    shared = {k: v for k, v in a.items() if k not in names}
    alone = [{**shared, **{k: a[k][:1] for k in names}}, {**shared, **{k: b[k][:1] for k in names}}]
    batch = {**shared, **{k: torch.cat([alone[0][k], alone[1][k]]) for k in names}}

    model = port.model()
    batched_out = output_tensors(port.forward(model, batch))
    alone_out = [dict(output_tensors(port.forward(model, kw))) for kw in alone]
    rows, not_compared = [], []
    for path, t in batched_out:
        singles = [out.get(path) for out in alone_out]
        if t.dim() == 0 or t.shape[0] != 2 or any(s is None or s.shape != (1, *t.shape[1:]) for s in singles):
            not_compared.append({"tensor": path, "batched_shape": list(t.shape), "alone_shapes": [None if s is None else list(s.shape) for s in singles]})
            continue
        for i, single in enumerate(singles):
            rows.append({"sample": i, "input_seed": INPUT_SEEDS[i], "tensor": path, "max_abs_diff": max_abs_diff(t[i : i + 1], single)})
    evidence = {"batched_inputs": names, "shared_inputs": sorted(shared), "tolerance": port.tolerance, "compared": rows, "not_compared": not_compared}
    if not rows:
        return skipped("no output tensor has the batch as its leading dimension", **evidence)
    worst = max(rows, key=lambda r: (r["max_abs_diff"] != r["max_abs_diff"], r["max_abs_diff"]))
    evidence["worst"] = worst
    if not all(within(r["max_abs_diff"], port.tolerance) for r in rows):
        return failed(
            f"sample {worst['sample']} (input seed {worst['input_seed']}) changes when batched with another: "
            f"{worst['tensor']} max abs {worst['max_abs_diff']:.3g} > {port.tolerance:g}", **evidence)
    return passed(f"both samples equal alone and batched (max abs {worst['max_abs_diff']:.3g} <= {port.tolerance:g})", **evidence)
