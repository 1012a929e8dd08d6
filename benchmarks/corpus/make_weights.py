"""Seeded weights for one corpus model, saved from the reference model itself (runs in the sandbox).

    python make_weights.py JOB.json

JOB.json: folder (the laid-out model folder, read-only here), module, cls, factory, inputs (source
of `inputs(seed)`), seed, out (the safetensors file to write, in the workspace), report.

The model is built exactly as its card says (the class with config.json's arguments, a list turned
back into a tuple where the constructor's default is a tuple; or the named factory with the whole
config) under a fixed seed. Its own initialisation is kept, except that a
parameter the initialisation leaves constant (zero-initialised output and adaLN-Zero layers, unit
norm scales) gets seeded noise on top: otherwise the output would not depend on the layers before
it and parity on these weights would prove little. Buffers keep their values. The report says
which parameters were perturbed and what the forward on `inputs(0)` gave (shape, finite, spread),
and that a fresh model loaded from the saved file reproduces that output exactly.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
import time
import traceback

HUB_KEYS = {"architectures", "model_type", "_name_or_path", "torch_dtype", "transformers_version", "_class_name", "_diffusers_version", "_factory"}


def build(job: dict, config: dict):
    if job["factory"]:
        module_name, _, fn = job["factory"].partition(":")
        return getattr(importlib.import_module(module_name), fn)(config)
    cls = getattr(importlib.import_module(job["module"]), job["cls"])
    return cls(**tuples_where_defaults_are(cls, {k: v for k, v in config.items() if k not in HUB_KEYS}))


def tuples_where_defaults_are(cls, kwargs: dict) -> dict:
    """JSON has no tuples: a list goes back to a tuple where the constructor's default is one."""
    params = inspect.signature(cls).parameters
    return {k: tuple(v) if isinstance(v, list) and k in params and isinstance(params[k].default, tuple) else v
            for k, v in kwargs.items()}


def first_tensor(out):
    import torch

    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        return next(first_tensor(o) for o in out if first_tensor(o) is not None)
    if isinstance(out, dict):
        return next(first_tensor(o) for o in out.values() if first_tensor(o) is not None)
    return getattr(out, "sample", None)


def perturb_constant_parameters(model, seed: int) -> list[str]:
    import torch

    g = torch.Generator().manual_seed(seed + 1)
    changed = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not p.is_floating_point() or p.numel() == 0 or p.min() != p.max():
                continue
            value = float(p.flatten()[0])
            scale = (0.5 if p.numel() == 1 else 0.05) if value == 0 else 0.1 * abs(value)
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)
            changed.append(name)
    return changed


def forward(model, kwargs):
    import torch

    model.eval()
    with torch.no_grad():
        return first_tensor(model(**kwargs))


def main() -> int:
    job = json.loads(open(sys.argv[1]).read())
    sys.path.insert(0, job["folder"])
    import torch
    from safetensors.torch import load_file, save_file

    report: dict = {"ok": False}
    started = time.monotonic()
    try:
        config = json.loads(open(f"{job['folder']}/config.json").read())
        torch.manual_seed(job["seed"])
        model = build(job, config)
        report["class"] = type(model).__name__
        report["perturbed"] = perturb_constant_parameters(model, job["seed"])
        state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        save_file(state, job["out"])
        report["tensors"] = len(state)
        report["parameters"] = sum(p.numel() for p in model.parameters())

        namespace: dict = {"torch": torch}
        exec(job["inputs"], namespace)
        kwargs = namespace["inputs"](0)
        out = forward(model, kwargs)
        torch.manual_seed(job["seed"] + 7)
        fresh = build(job, config)
        missing, unexpected = fresh.load_state_dict(load_file(job["out"]), strict=False)
        again = forward(fresh, kwargs)
        report.update({
            "inputs": {k: [list(v.shape), str(v.dtype)] if torch.is_tensor(v) else repr(v) for k, v in kwargs.items()},
            "output_shape": list(out.shape),
            "finite": bool(torch.isfinite(out).all()),
            "std": float(out.float().std()),
            "max_abs": float(out.float().abs().max()),
            "reloaded_max_abs_diff": float((out - again).abs().max()),
            "reload_missing": list(missing),
            "reload_unexpected": list(unexpected),
        })
        report["ok"] = report["finite"] and report["std"] > 0 and report["reloaded_max_abs_diff"] == 0 and not missing and not unexpected
    except Exception as exc:  # reported, the build decides
        report["error"] = f"{type(exc).__name__}: {exc}"
        frames = traceback.extract_tb(exc.__traceback__)
        own = [f for f in frames if f.filename.startswith(job["folder"])][-2:]
        report["where"] = [f"{f.filename.replace(job['folder'] + '/', '')}:{f.lineno} {f.name}" for f in [*own, frames[-1]]]
    report["wall_s"] = round(time.monotonic() - started, 2)
    open(job["report"], "w").write(json.dumps(report, indent=1))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
