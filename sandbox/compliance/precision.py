"""Half-precision forwards stay finite (shared by fp16_finite and bf16_finite).

The port and its float inputs are cast to the dtype and run on the suite's device. An op that
the device has no kernel for in that dtype makes the check *skipped* with torch's message (the
port cannot be judged there), never passed; any other error is a failure of the port."""

from __future__ import annotations

import re

import torch

from sandbox.compliance.port import INPUT_SEEDS, Port, output_tensors, worst_difference
from sandbox.compliance.result import CheckResult, error_line, failed, passed, skipped

_NO_KERNEL = re.compile(r"not implemented for '(Half|BFloat16)'|not supported for (Half|BFloat16)|\"\w+\" not implemented for", re.I)


def _missing_kernel(exc: Exception) -> bool:
    return isinstance(exc, NotImplementedError) or (isinstance(exc, RuntimeError) and bool(_NO_KERNEL.search(str(exc))))


def finite_forward(port: Port, dtype: torch.dtype) -> CheckResult:
    name = str(dtype).removeprefix("torch.")
    reference = port.forward(port.model(), port.inputs(INPUT_SEEDS[0]))
    model = port.model().to(dtype)
    try:
        out = port.forward(model, port.inputs(INPUT_SEEDS[0], dtype))
    except Exception as exc:
        message = error_line(exc)
        where = port.where(exc)
        evidence = {"dtype": name, "device": port.device.type, "error": message, "where": where}
        if _missing_kernel(exc):
            return skipped(f"{name} forward cannot run on {port.device.type}: {message}", **evidence)
        return failed(f"{name} forward raises {message}" + (f" (at {where})" if where else ""), **evidence)
    tensors = output_tensors(out)
    report = []
    for path, t in tensors:
        if t.is_floating_point() or t.is_complex():
            nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
            report.append({"tensor": path, "dtype": str(t.dtype).removeprefix("torch."), "nan": nan, "inf": inf, "numel": t.numel()})
    evidence = {"dtype": name, "device": port.device.type, "outputs": report, "vs_float32": worst_difference(reference, out)}
    bad = [r for r in report if r["nan"] or r["inf"]]
    if not tensors:
        return failed(f"{name} forward returned no tensor", **evidence)
    if bad:
        first = bad[0]
        return failed(f"{name} forward is not finite: {first['tensor']} has {first['nan']} nan and {first['inf']} inf of {first['numel']} values", **evidence)
    return passed(f"{name} forward finite on {port.device.type} ({len(report)} output tensors; max abs {evidence['vs_float32']['max_abs_diff']:.3g} from float32)", **evidence)
