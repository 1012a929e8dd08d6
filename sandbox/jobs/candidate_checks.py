"""Checks on the port that need it built and run (runs sandboxed: the port is untrusted code).

    python -m sandbox.jobs.candidate_checks JOB_JSON RESULT_JSON

JOB_JSON: spec (a parity spec: its candidate() builds the port, its inputs() feeds it), seed, out
(a folder), and flags:
- always: the built port's modules, each with its class and whether diffusers' layerwise
  casting would cast it;
- gradients: rebuild with seeded random weights, run forward and backward on the spec's
  candidate inputs with gradient checkpointing off, then on, and write both sets of parameter
  gradients (grads_off/grads_on.safetensors) for the host to compare; count the calls that went
  through the checkpointing function and name the modules they ran;
- return_dict: compare the output of return_dict=False with the dataclass's.
"""

import json
import sys
import traceback
from pathlib import Path

import torch

from sandbox.loading import read_json
from sandbox.parity.exchange import flatten_output, save_tensors
from sandbox.parity.runside.spec import load_spec, seed_everything

CASTABLE = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.ConvTranspose1d, torch.nn.ConvTranspose2d,
            torch.nn.ConvTranspose3d, torch.nn.Linear, torch.nn.Embedding)  # what diffusers' layerwise casting casts


def _modules(model: torch.nn.Module) -> list[dict]:
    return [{"name": name, "type": type(mod).__name__, "castable": isinstance(mod, CASTABLE)} for name, mod in model.named_modules()]


def _tensors(out) -> list[torch.Tensor]:
    return [t for _, t in flatten_output(out) if isinstance(t, torch.Tensor)]


def _loss(out) -> torch.Tensor:
    """A fixed random projection of every output tensor, so every output element gets a gradient."""
    total = 0.0
    for i, t in enumerate(_tensors(out)):
        if t.is_floating_point():
            w = torch.randn(t.shape, generator=torch.Generator().manual_seed(1000 + i)).to(t.device, t.dtype)
            total = total + (t * w).sum()
    if not isinstance(total, torch.Tensor):
        raise ValueError("the model returns no floating-point tensor to differentiate")
    return total


def _randomize(model: torch.nn.Module, seed: int) -> None:
    """Seeded weights with no zero-initialised layer left (a zero output projection, common in
    diffusion models, would stop every gradient before it reaches the blocks): matrices scaled
    by 1/sqrt(fan-in), vectors their value plus small noise."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.is_floating_point() and p.numel():
                noise = torch.randn(p.shape, generator=g).to(p.device, p.dtype)
                p.copy_(noise / p[0].numel() ** 0.5 if p.dim() >= 2 else p + 0.1 * noise)


def checks(job: dict) -> dict:
    spec = load_spec(job["spec"])
    seed = int(job.get("seed", 0))
    seed_everything(seed)
    model = spec.candidate()
    result: dict = {"ok": True, "modules": _modules(model)}
    for key, check in (("gradients", lambda: _gradients(model, spec, seed, Path(job["out"]))),
                       ("return_dict", lambda: _return_dict(model, spec.inputs(seed)["candidate"]))):
        if job.get(key):
            try:
                result[key] = check()
            except Exception as exc:  # one check failing leaves the others' findings
                result[key] = {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}
    return result


def _gradients(model: torch.nn.Module, spec, seed: int, out: Path) -> dict:
    if not getattr(model, "_supports_gradient_checkpointing", False):
        return {"ok": False, "error": "the model does not set _supports_gradient_checkpointing"}
    _randomize(model, 1234 + seed)
    model.eval()  # dropout off: both passes must compute the same function
    inputs = spec.inputs(seed)["candidate"]
    names = {id(m): n for n, m in model.named_modules()}

    def run_backward() -> tuple[float, dict[str, torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        loss = _loss(model(**inputs))
        loss.backward()
        return float(loss), {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}

    loss_off, grads_off = run_backward()
    model.enable_gradient_checkpointing()
    calls = {"n": 0}
    checkpointed: set[str] = set()
    for module in model.modules():
        fn = getattr(module, "_gradient_checkpointing_func", None)
        if fn is not None:
            def counted(block, *args, _fn=fn, **kwargs):
                calls["n"] += 1
                checkpointed.add(names.get(id(block), "?"))
                return _fn(block, *args, **kwargs)
            module._gradient_checkpointing_func = counted
    loss_on, grads_on = run_backward()
    model.disable_gradient_checkpointing()
    save_tensors(out / "grads_off.safetensors", grads_off)
    save_tensors(out / "grads_on.safetensors", grads_on)
    return {"ok": True, "checkpointed_calls": calls["n"], "checkpointed_modules": sorted(checkpointed),
            "loss_off": loss_off, "loss_on": loss_on, "with_gradient": len(grads_off)}


def _return_dict(model: torch.nn.Module, inputs: dict) -> dict:
    model.eval()
    with torch.no_grad():
        as_dataclass = model(**inputs)
        as_tuple = model(**inputs, return_dict=False)
    a, b = _tensors(as_dataclass), _tensors(as_tuple)
    return {
        "dataclass": type(as_dataclass).__name__,
        "false_gives_tuple": isinstance(as_tuple, tuple),
        "same_tensors": len(a) == len(b) and all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(a, b, strict=False)),
    }


def main() -> int:
    job_file, result_file = sys.argv[1:3]
    job = read_json(job_file)
    try:
        result = checks(job)
    except Exception as exc:  # the port is untrusted: report, don't crash
        result = {"ok": False, "error": f"{exc.__class__.__name__}: {exc}", "trace": traceback.format_exc(limit=4)}
    with open(result_file, "w") as fh:
        json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
