"""Run a parity spec: load weights into the candidate, run both sides seeded, compare, trace.

A spec (plain Python) defines reference(), candidate(), inputs(seed) and optionally convert(),
saved(), reference_output()/candidate_output(), tolerance, copy_weights, unloaded_ok, unused_ok.
See docs/parity.md for the contract.
"""

from __future__ import annotations

import importlib.util
import math
import random
import sys
from pathlib import Path
from typing import Any

import torch

from sandbox.mapping import WeightMapping, match_by_name
from sandbox.parity.trace import Tracer, align, first_tensor

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# fp32: a faithful port differs by reassociation only. Half precisions round at every op, so
# max-abs is loose there and cosine is the gate that tells a wrong port from rounding.
PRESETS = {
    "float32": {"max_abs": 1e-4, "cosine": 0.99999},
    "bfloat16": {"max_abs": 5e-2, "cosine": 0.999},
    "float16": {"max_abs": 1e-2, "cosine": 0.9995},
}


class ParityError(Exception):
    """The spec could not be run (exit 2), as opposed to a port that does not match (exit 1)."""


class _TrackingDict(dict):
    """Records which reference keys a spec's convert() reads, to find unused weights."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def pop(self, key, *default):
        self.read.add(key)
        return super().pop(key, *default)

    def items(self):
        self.read.update(self.keys())
        return super().items()

    def values(self):
        self.read.update(self.keys())
        return super().values()


def load_spec(path: str | Path):
    path = Path(path)
    if not path.is_file():
        raise ParityError(f"spec not found: {path}")
    spec = importlib.util.spec_from_file_location(f"parity_spec_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ParityError(f"spec {path.name} fails to load: {exc.__class__.__name__}: {exc}") from exc
    missing = [f for f in ("reference", "candidate", "inputs") if not callable(getattr(module, f, None))]
    if missing:
        raise ParityError(f"spec {path.name} must define {', '.join(missing)}()")
    return module


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA generators too
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:
        pass


def _call(spec, name: str, *args):
    try:
        return getattr(spec, name)(*args)
    except Exception as exc:
        raise ParityError(f"spec {name}() failed: {exc.__class__.__name__}: {exc}") from exc


def _cast(value: Any, device: torch.device, dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device=device, dtype=dtype if value.is_floating_point() else value.dtype)
    if isinstance(value, dict):
        return {k: _cast(v, device, dtype) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast(v, device, dtype) for v in value)
    return value


def compare(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    a64, b64 = a.detach().double().flatten().cpu(), b.detach().double().flatten().cpu()
    diff = (a64 - b64).abs()
    denom = a64.norm() * b64.norm()
    cosine = float((a64 @ b64) / denom) if denom > 0 else (1.0 if torch.equal(a64, b64) else 0.0)
    mse = float((diff**2).mean()) if diff.numel() else 0.0
    peak = float(a64.abs().max()) if a64.numel() else 0.0
    psnr = math.inf if mse == 0 else 10 * math.log10(max(peak, 1e-12) ** 2 / mse)
    return {
        "max_abs_diff": float(diff.max()) if diff.numel() else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.numel() else 0.0,
        "cosine": cosine,
        "psnr": psnr,
        "reference_abs_max": peak,
    }


def _within(metrics: dict[str, float], tol: dict[str, float]) -> bool:
    return metrics["max_abs_diff"] <= tol["max_abs"] and metrics["cosine"] >= tol["cosine"]


def _provenance(spec, ref_state: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    """Which reference keys each converted tensor is made of.

    convert() runs a second time on marker tensors: reference key i becomes a (free, expanded)
    tensor whose every element is i. Renames, chunk, cat, transpose and reshape keep the values,
    so the distinct values of each output name its sources, even through fused-to-split maps.
    Outputs whose values were changed by arithmetic get no sources.
    """
    keys = list(ref_state)
    if len(keys) >= 2**24:  # float32 holds the indices exactly below this
        return {}
    markers = _TrackingDict({k: torch.tensor(float(i)).expand(v.shape) for i, (k, v) in enumerate(ref_state.items())})
    try:
        out = spec.convert(markers)
    except Exception:
        return {}
    sources: dict[str, list[str]] = {}
    for cand_key, value in out.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.numel() == 0:
            continue
        found = torch.unique(value.detach().float().flatten()).tolist()
        if all(float(v).is_integer() and 0 <= v < len(keys) for v in found):
            sources[cand_key] = [keys[int(v)] for v in found]
    return sources


def _load_weights(spec, reference: torch.nn.Module, candidate: torch.nn.Module, inputs: dict | None = None) -> tuple[WeightMapping, list[str]]:
    """Copy reference weights into the candidate. Returns the mapping and the problems found."""
    ref_state = reference.state_dict()
    cand_state = candidate.state_dict()
    if callable(getattr(spec, "convert", None)):
        tracked = _TrackingDict(ref_state)
        converted = _call(spec, "convert", tracked)
        sources = _provenance(spec, ref_state)
        # A reference key is used if a converted tensor carries its values, or (when convert did
        # arithmetic that hides provenance) if convert read it.
        used = {k for keys in sources.values() for k in keys} | tracked.read
        mapping = WeightMapping(
            pairs={k: (sources.get(k) or [k])[0] for k in converted},
            unmatched_reference=sorted(set(ref_state) - used),
            unmatched_candidate=sorted(set(cand_state) - set(converted)),
            source="spec",
        )
        mapping.sources = {k: v for k, v in sources.items() if v}
        tensors = converted
    else:
        mapping = match_by_name(ref_state, cand_state)
        if (mapping.unmatched_candidate or mapping.unmatched_reference) and inputs is not None:
            from sandbox.parity.engine_infer import infer_for_spec

            mapping = infer_for_spec(reference, candidate, inputs, mapping)
        tensors = mapping.apply(ref_state)

    unexpected = sorted(set(tensors) - set(cand_state))
    problems = []
    if unexpected:
        problems.append(f"{len(unexpected)} converted keys the candidate does not have (first: {unexpected[0]})")
    shape_bad = [k for k in tensors if k in cand_state and tuple(tensors[k].shape) != tuple(cand_state[k].shape)]
    if shape_bad:
        k = shape_bad[0]
        problems.append(f"shape mismatch for {k}: {tuple(tensors[k].shape)} vs candidate {tuple(cand_state[k].shape)}")
        tensors = {k: v for k, v in tensors.items() if k not in shape_bad}
    candidate.load_state_dict({k: v for k, v in tensors.items() if k in cand_state}, strict=False)

    unloaded_ok = dict(getattr(spec, "unloaded_ok", {}) or {})
    unused_ok = dict(getattr(spec, "unused_ok", {}) or {})
    unloaded = [k for k in mapping.unmatched_candidate if k not in unloaded_ok]
    unused = [k for k in mapping.unmatched_reference if k not in unused_ok]
    if unloaded:
        problems.append(f"{len(unloaded)} candidate parameters/buffers left unloaded (first: {unloaded[0]})")
    if unused:
        problems.append(f"{len(unused)} reference weights unused (first: {unused[0]})")
    return mapping, problems


def _layer_table(ref_trace, cand_trace, mapping: WeightMapping, tol: dict[str, float]) -> list[dict[str, Any]]:
    rows = []
    for r, c in align(ref_trace, cand_trace, {k: mapping.reference_keys(k) for k in mapping.pairs}):
        row: dict[str, Any] = {
            "reference_module": r.name if r.call == 0 else f"{r.name}#{r.call}",
            "candidate_module": c.name if c.call == 0 else f"{c.name}#{c.call}",
            "shape": list(r.output.shape),
        }
        if r.output.shape != c.output.shape:
            # Same module, different layout (a port may reshape inside a module): not comparable
            # here; the final output comparison still judges the numbers.
            row.update(max_abs_diff=None, cosine=None, diverged=None, note=f"candidate shape {list(c.output.shape)}")
        else:
            m = compare(r.output, c.output)
            scale = max(1.0, m["reference_abs_max"])
            cos_ok = m["cosine"] >= tol["cosine"] or r.output.numel() < 2
            row.update(
                max_abs_diff=m["max_abs_diff"],
                cosine=m["cosine"],
                diverged=not (m["max_abs_diff"] <= tol["max_abs"] * scale and cos_ok),
            )
        rows.append(row)
    return rows


def _forward(model, kwargs, seed, side: str):
    seed_everything(seed)
    tracer = Tracer(model)
    try:
        out = model(**kwargs)
    except Exception as exc:
        raise ParityError(f"{side} forward failed: {exc.__class__.__name__}: {exc}") from exc
    finally:
        tracer.close()
    return out, tracer.entries


def _select_output(spec, hook: str, out) -> torch.Tensor:
    fn = getattr(spec, hook, None)
    t = _call(spec, hook, out) if callable(fn) else first_tensor(out)
    if not isinstance(t, torch.Tensor):
        raise ParityError(f"no tensor in the {hook.split('_')[0]} output ({type(out).__name__})")
    return t


def run_parity(spec_path: str | Path, device: str = "cpu", dtype: str = "float32", seed: int = 0) -> dict[str, Any]:
    if dtype not in DTYPES:
        raise ParityError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ParityError("--device cuda requested but no CUDA device is visible")
    torch_device, torch_dtype = torch.device(device), DTYPES[dtype]
    spec = load_spec(spec_path)
    tol = {**PRESETS[dtype], **(getattr(spec, "tolerance", None) or {})}

    seed_everything(seed)
    reference = _call(spec, "reference")
    seed_everything(seed + 1)  # a different init, so an unloaded parameter cannot match by accident
    candidate = _call(spec, "candidate")
    for side, model in (("reference", reference), ("candidate", candidate)):
        if not isinstance(model, torch.nn.Module):
            raise ParityError(f"spec {side}() returned {type(model).__name__}, not a torch.nn.Module")

    problems: list[str] = []
    inputs = _call(spec, "inputs", seed)  # also what mapping inference runs both models on
    if not (isinstance(inputs, dict) and {"reference", "candidate"} <= inputs.keys()):
        raise ParityError('spec inputs(seed) must return {"reference": {...}, "candidate": {...}}')
    if getattr(spec, "copy_weights", True):
        mapping, problems = _load_weights(spec, reference, candidate, inputs)
    else:
        mapping = match_by_name(reference.state_dict(), candidate.state_dict())
        mapping.source = "none (copy_weights = False)"

    reference.eval().to(torch_device, torch_dtype)
    candidate.eval().to(torch_device, torch_dtype)
    ref_in = _cast(inputs["reference"], torch_device, torch_dtype)
    cand_in = _cast(inputs["candidate"], torch_device, torch_dtype)

    with torch.no_grad():
        ref_out, ref_trace = _forward(reference, ref_in, seed, "reference")
        cand_out, cand_trace = _forward(candidate, cand_in, seed, "candidate")
        a = _select_output(spec, "reference_output", ref_out)
        b = _select_output(spec, "candidate_output", cand_out)
        if a.shape != b.shape:
            problems.append(f"output shapes differ: reference {list(a.shape)}, candidate {list(b.shape)}")
            metrics = {"max_abs_diff": math.inf, "mean_abs_diff": math.inf, "cosine": 0.0, "psnr": 0.0, "reference_abs_max": 0.0}
        else:
            metrics = compare(a, b)
            if not _within(metrics, tol):
                problems.append(
                    f"outputs differ: max abs {metrics['max_abs_diff']:.3g} (tolerance {tol['max_abs']:g}), cosine {metrics['cosine']:.6f} (at least {tol['cosine']})"
                )
        layers = _layer_table(ref_trace, cand_trace, mapping, tol)
        diverged_layer = next((row for row in layers if row["diverged"] is True), None)
        if diverged_layer and not problems:
            # The output can hide a small error (a wrong eps, say) under the tolerance; a layer cannot.
            problems.append(
                f"layer {diverged_layer['reference_module']} diverges (max abs {diverged_layer['max_abs_diff']:.3g}) although the final output is within tolerance"
            )

        saved_report = None
        if callable(getattr(spec, "saved", None)):
            seed_everything(seed + 2)  # as for candidate(): a stray init must not match by luck
            saved_model = _call(spec, "saved").eval().to(torch_device, torch_dtype)
            seed_everything(seed)
            s = _select_output(spec, "candidate_output", saved_model(**cand_in))
            saved_report = compare(a, s) if s.shape == a.shape else {"max_abs_diff": math.inf, "cosine": 0.0}
            saved_report["passed"] = s.shape == a.shape and _within(saved_report, tol)
            if not saved_report["passed"]:
                problems.append("the candidate reloaded from its saved folder does not match the reference")

    passed = not problems
    first = None
    if not passed:
        diverged = next((row for row in layers if row["diverged"] is True), None)
        if diverged:
            first = {k: diverged[k] for k in ("reference_module", "candidate_module", "max_abs_diff")}
    return {
        "passed": passed,
        "problems": problems,
        **{k: metrics[k] for k in ("max_abs_diff", "mean_abs_diff", "cosine", "psnr")},
        "tolerance": tol,
        "dtype": dtype,
        "device": str(torch_device),
        "seed": seed,
        "output_shape": list(a.shape),
        "reference_output_head": [float(x) for x in a.detach().float().flatten()[:8].cpu()],
        "mapping": mapping.summary(),
        "first_divergence": first,
        "saved": saved_report,
        "layers": layers,
    }
