"""The forward compiles with `torch.compile` (fullgraph=False, the default inductor backend) and
the compiled forward gives the eager outputs within the port's tolerance. Graph breaks are
counted and reported (diffusers' own compile tests ask for none; here they are evidence, not a
failure). The slowest check on CPU: a caller may skip it, with its reason recorded."""

from __future__ import annotations

import os
import time

from sandbox.compliance.port import INPUT_SEEDS, Port, within, worst_difference
from sandbox.compliance.result import CheckResult, error_line, failed, passed, skipped

NAME = "torch_compile"
TITLE = "torch.compile"



def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the C++ compiler runs as a child):
    what compiling costs, whatever else the machine is doing."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def check(port: Port) -> CheckResult:
    import torch
    import torch._dynamo
    from torch._dynamo.utils import counters

    model = port.model()
    kwargs = port.inputs(INPUT_SEEDS[0])
    eager = port.forward(model, kwargs)
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(model, fullgraph=False)
    start, cpu_start = time.monotonic(), _cpu_seconds()
    try:
        first = port.forward(compiled, kwargs)
    except Exception as exc:
        message = error_line(exc)
        if "InvalidCxxCompiler" in type(exc).__name__ or "InvalidCxxCompiler" in message:
            return skipped(f"no working C++ compiler for inductor on this machine: {message}", error=message)
        return failed(f"torch.compile(fullgraph=False) of the forward fails: {message}", error=message)
    compile_s, compile_cpu_s = time.monotonic() - start, _cpu_seconds() - cpu_start
    start = time.monotonic()
    second = port.forward(compiled, kwargs)
    rerun_s = time.monotonic() - start
    breaks = {str(k)[:200]: int(v) for k, v in counters["graph_break"].items()}
    worst = worst_difference(eager, first)
    again = worst_difference(eager, second)
    evidence = {
        "backend": "inductor", "fullgraph": False, "device": port.device.type, "first_call_s": round(compile_s, 2),
        "first_call_cpu_s": round(compile_cpu_s, 2),
        "second_call_s": round(rerun_s, 3), "graph_breaks": breaks, "vs_eager": worst, "second_call_vs_eager": again,
        "tolerance": port.tolerance,
    }
    worse = max((worst, again), key=lambda w: (w["max_abs_diff"] != w["max_abs_diff"], w["max_abs_diff"]))
    if not within(worse["max_abs_diff"], port.tolerance):
        return failed(f"the compiled forward differs from eager: {worse['tensor']} max abs {worse['max_abs_diff']:.3g} > {port.tolerance:g}", **evidence)
    note = f"; {sum(breaks.values())} graph breaks" if breaks else "; no graph break"
    return passed(f"compiles in {compile_s:.1f}s ({compile_cpu_s:.1f}s CPU) and matches eager (max abs {worse['max_abs_diff']:.3g}){note}", **evidence)
