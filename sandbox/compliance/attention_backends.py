"""Attention through `dispatch_attention_fn` gives the same outputs on every backend available.

Every backend in diffusers' attention registry is tried: those that need a kernel from the Hub
are skipped (the sandbox has no network); the rest are first probed with a plain
`dispatch_attention_fn` call on small tensors, and a backend the machine cannot run is skipped
with its error. The port then runs with each usable backend selected (the `attention_backend`
context and, for diffusers attention modules, `set_attention_backend`) while each backend's
function counts its calls, so the suite knows which backend really computed the attention: a
switch that changes nothing is a failure, and a forward that never calls the dispatcher makes
the check skipped. Outputs are compared with the native backend's at the port's tolerance. A
backend that raises from inside its own function (a mask or layout it does not take) is listed
as not applicable, with its message."""

from __future__ import annotations

from collections import Counter
from contextlib import contextmanager
from typing import Any

import torch

from sandbox.compliance.port import INPUT_SEEDS, Port, within, worst_difference
from sandbox.compliance.result import CheckResult, error_line, failed, passed, skipped

NAME = "attention_backends"
TITLE = "attention backends equal"
BASELINE = "native"



@contextmanager
def counted_backends(registry: Any, counts: Counter, raised: dict[str, BaseException]):
    """Every registered backend function wrapped to count its calls and note what it raised."""
    original = registry._backends

    def wrap(name: str, fn: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                raised[name] = exc
                raise
        return counted

    registry._backends = {k: wrap(k.value, v) for k, v in original.items()}
    try:
        yield
    finally:
        registry._backends = original


def _probe(ad: Any, backend: Any, device: torch.device) -> str | None:
    """None when the backend runs a small attention here, else why not."""
    q = torch.randn(1, 4, 2, 8, generator=torch.Generator().manual_seed(0)).to(device)  # (batch, tokens, heads, dim)
    try:
        ad._check_attention_backend_requirements(backend)
        ad.dispatch_attention_fn(q, q, q, backend=backend)
    except Exception as exc:
        return error_line(exc)
    return None


def _run_with(port: Port, model: torch.nn.Module, kwargs: dict[str, Any], backend: Any, ad: Any) -> Any:
    with ad.attention_backend(backend):
        if hasattr(model, "set_attention_backend"):
            model.set_attention_backend(backend.value)
        try:
            return port.forward(model, kwargs)
        finally:
            if hasattr(model, "reset_attention_backend"):
                model.reset_attention_backend()


def check(port: Port) -> CheckResult:
    import diffusers.models.attention_dispatch as ad
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # set_attention_backend warns "experimental" on every call

    registry = ad._AttentionBackendRegistry
    kwargs = port.inputs(INPUT_SEEDS[0])
    model = port.model()
    counts: Counter = Counter()
    raised: dict[str, BaseException] = {}
    rows: list[dict[str, Any]] = []
    outputs: dict[str, Any] = {}
    with counted_backends(registry, counts, raised):
        backends = sorted(registry.list_backends(), key=lambda b: (b.value != BASELINE, b.value))
        for backend in backends:
            name = backend.value
            if name.endswith("_hub"):
                rows.append({"backend": name, "status": "unavailable", "reason": "needs a kernel downloaded from the Hub (no network in the sandbox)"})
                continue
            why = _probe(ad, backend, port.device)
            if why:
                rows.append({"backend": name, "status": "unavailable", "reason": why})
                continue
            counts.clear()
            raised.clear()
            try:
                out = _run_with(port, model, kwargs, backend, ad)
            except Exception as exc:
                inside = raised.get(name)
                status = "not applicable" if inside is exc or (inside is not None and error_line(inside) == error_line(exc)) else "failed"
                rows.append({"backend": name, "status": status, "reason": error_line(exc), "calls": dict(counts)})
                continue
            calls = dict(counts)
            if not calls:
                rows.append({"backend": name, "status": "no calls", "calls": calls})
                continue
            if counts[name] == 0:
                rows.append({"backend": name, "status": "ignored", "calls": calls,
                             "reason": f"selecting {name} changed nothing: the attention calls went to {', '.join(calls)}"})
                continue
            outputs[name] = out
            rows.append({"backend": name, "status": "ran", "calls": calls})
    evidence: dict[str, Any] = {"backends": rows, "tolerance": port.tolerance, "baseline": BASELINE, "device": port.device.type}
    if any(r["status"] == "no calls" for r in rows) and not outputs:
        return skipped("the forward never calls dispatch_attention_fn", **evidence)
    if BASELINE not in outputs:
        base = next((r for r in rows if r["backend"] == BASELINE), {"reason": "not registered"})
        return failed(f"the port does not run with the {BASELINE} attention backend: {base.get('reason', base.get('status'))}", **evidence)
    for r in rows:
        if r["status"] == "ran" and r["backend"] != BASELINE:
            r["vs_native"] = worst_difference(outputs[BASELINE], outputs[r["backend"]])
    ran = [r["backend"] for r in rows if r["status"] == "ran"]
    bad = [r for r in rows if r["status"] in ("failed", "ignored")
           or (r["status"] == "ran" and "vs_native" in r and not within(r["vs_native"]["max_abs_diff"], port.tolerance))]
    evidence["ran"] = ran
    if bad:
        texts = [
            f"{r['backend']}: {r['reason']}" if "reason" in r
            else f"{r['backend']} differs from native: {r['vs_native']['tensor']} max abs {r['vs_native']['max_abs_diff']:.3g} > {port.tolerance:g}"
            for r in bad
        ]
        return failed("; ".join(texts), **evidence)
    if len(ran) < 2:
        return skipped(f"only {', '.join(ran)} can run on this machine: nothing to compare", **evidence)
    worst = max(r["vs_native"]["max_abs_diff"] for r in rows if "vs_native" in r)
    return passed(f"{', '.join(ran)} give equal outputs (max abs {worst:.3g} from native)", **evidence)
