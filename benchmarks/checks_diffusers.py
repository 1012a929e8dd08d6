"""Time `integrate check` on the installed diffusers package, cold and warm, and draw a sample of
findings to judge by hand, stratified by rule.

    python benchmarks/checks_diffusers.py [--sample 40] [--seed 0] [--port]

Cold: an empty cache folder; warm: the same folder again. Each run is a fresh process (the
`integrate check` command), so interpreter start-up and imports are included. Prints the wall time
and the CPU time (the command and its worker processes) of each, since a shared machine's load
inflates wall time, split into the command's own process (serial) and its workers (parallel) for
an estimate of the wall time on idle cores, the number of findings per rule, and the sample: findings are drawn round-robin over the
rules (each rule's findings shuffled with the seed) until the sample size is reached, so every rule
that fires is represented and none dominates. `--port` adds the port-only (tamper) rules.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

# Runs `python -m agent.cli ...` and, when it exits, writes the CPU seconds of the command's own
# process (the serial part: start-up, imports, shared indexes, merging) to the file $CPU_SPLIT names;
# its worker processes' CPU is the rest of the total.
_WRAPPER = (
    "import atexit, os, resource, runpy, sys\n"
    "def _own():\n"
    "    r = resource.getrusage(resource.RUSAGE_SELF)\n"
    "    open(os.environ['CPU_SPLIT'], 'w').write(str(r.ru_utime + r.ru_stime))\n"
    "atexit.register(_own)\n"
    "sys.argv[0] = 'agent.cli'\n"
    "runpy.run_module('agent.cli', run_name='__main__', alter_sys=True)\n"
)


def run_check(target: str, cache: str, port: bool) -> tuple[float, float, float, list[dict]]:
    """(wall seconds, CPU seconds of the command and its workers, CPU seconds of the command's own
    process, findings)."""
    split = os.path.join(cache, "cpu-split")
    env = dict(os.environ, INTEGRATE_CACHE_DIR=cache, CPU_SPLIT=split)
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    cmd = [sys.executable, "-c", _WRAPPER, "check", target, "--format", "json", *(["--port"] if port else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"check failed: {proc.stderr.strip()}")
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    own = float(Path(split).read_text())
    return elapsed, cpu, own, json.loads(proc.stdout)


def stratified(findings: list[dict], size: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    by_rule: dict[str, list[dict]] = defaultdict(list)
    for f in findings:
        by_rule[f["rule"]].append(f)
    for items in by_rule.values():
        rng.shuffle(items)
    sample, depth = [], 0
    while len(sample) < size and any(len(v) > depth for v in by_rule.values()):
        for rule in sorted(by_rule):
            if depth < len(by_rule[rule]) and len(sample) < size:
                sample.append(by_rule[rule][depth])
        depth += 1
    return sample


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--port", action="store_true")
    args = parser.parse_args()
    import diffusers

    target = str(Path(diffusers.__file__).parent)
    files = sum(1 for _ in Path(target).rglob("*.py"))
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as cache:
        cold, cold_cpu, cold_own, findings = run_check(target, cache, args.port)
        warm, warm_cpu, warm_own, again = run_check(target, cache, args.port)
    assert findings == again, "the cache changed the findings"
    print(f"diffusers {diffusers.__version__}: {files} files, {os.cpu_count()} cores, load average before {load:.1f}, after {os.getloadavg()[0]:.1f}")
    print(f"cold: {cold:.2f} s wall, {cold_cpu:.2f} s CPU   warm: {warm:.2f} s wall, {warm_cpu:.2f} s CPU   findings: {len(findings)}")
    cores = os.cpu_count() or 1
    print(f"  CPU of the command's own process (serial) / of its workers (parallel): cold {cold_own:.2f} / {cold_cpu - cold_own:.2f} s, warm {warm_own:.2f} / {warm_cpu - warm_own:.2f} s")
    print(f"  wall on {cores} otherwise idle cores, estimated as serial + parallel / {cores}: cold {cold_own + (cold_cpu - cold_own) / cores:.2f} s, warm {warm_own + (warm_cpu - warm_own) / cores:.2f} s")
    for rule, n in sorted(Counter(f["rule"] for f in findings).items()):
        print(f"  {rule}: {n}")
    sample = stratified(findings, args.sample, args.seed)
    print(f"\nsample of {len(sample)} (seed {args.seed}, round-robin over {len({f['rule'] for f in findings})} rules):")
    for i, f in enumerate(sample, 1):
        print(f"  {i:>2}. {f['rule']} {Path(f['path']).relative_to(target)}:{f['line']} {f['message']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
