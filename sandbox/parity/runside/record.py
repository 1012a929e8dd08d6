"""Running one side's model on the prepared inputs and recording what came out.

Outputs are flattened to (path, leaf) so every tensor of a tuple, dict or dataclass output is
kept; the first input set is also traced module by module. Everything lands in one safetensors
file and a JSON description, read later by the verdict.
"""

from __future__ import annotations

from typing import Any

import torch

from sandbox.parity.errors import ParityError
from sandbox.parity.exchange import flatten_output, trace_sample
from sandbox.parity.runside.spec import call, cast, seed_everything
from sandbox.parity.runside.tracer import Tracer


def run_model(
    model: torch.nn.Module,
    kwargs_sets: list[dict[str, Any]],
    seeds: list[int],
    *,
    spec,
    select_hook: str,
    side: str,
    device: torch.device,
    dtype: torch.dtype,
    tensors: dict[str, torch.Tensor],
    prefix: str,
    trace: bool,
) -> dict[str, Any]:
    """Forward on each input set; returns {"outputs": [[path, key|None, kind], ...] per set,
    "trace": [...]} and fills `tensors`."""
    outputs, trace_rows = [], []
    for i, (kwargs, seed) in enumerate(zip(kwargs_sets, seeds, strict=True)):
        if not isinstance(kwargs, dict):
            raise ParityError(f"{side} inputs must be a dict of keyword arguments")
        kwargs = cast(kwargs, device, dtype)
        seed_everything(seed)
        tracer = Tracer(model) if trace and i == 0 else None
        try:
            with torch.no_grad():
                out = model(**kwargs)
        except Exception as exc:
            raise ParityError(f"{side} forward failed: {exc.__class__.__name__}: {exc}") from exc
        finally:
            if tracer is not None:
                tracer.close()
        if callable(getattr(spec, select_hook, None)):
            out = call(spec, select_hook, out)
        leaves = []
        for path, leaf in flatten_output(out):
            if isinstance(leaf, torch.Tensor):
                key = f"{prefix}s{i}/{path}"
                tensors[key] = leaf.detach()
                leaves.append([path, key, str(leaf.dtype).removeprefix("torch.")])
            else:
                leaves.append([path, None, leaf])
        outputs.append(leaves)
        if tracer is not None:
            for n, e in enumerate(tracer.entries):
                key = None
                if e.output is not None:
                    key = f"{prefix}trace/{n}"
                    tensors[key] = trace_sample(e.output)
                trace_rows.append({
                    "name": e.name, "call": e.call, "keys": sorted(e.keys), "tensor": key,
                    "shape": None if e.output is None else list(e.output.shape),
                })
    return {"outputs": outputs, "trace": trace_rows}


def state_description(model: torch.nn.Module) -> dict[str, dict[str, Any]]:
    return {k: {"shape": list(v.shape), "dtype": str(v.dtype).removeprefix("torch.")} for k, v in model.state_dict().items()}
