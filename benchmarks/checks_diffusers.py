"""Time `integrate check` on the installed diffusers package, cold and warm, and sample findings.

    python benchmarks/checks_diffusers.py [--sample 20] [--seed 0]

Cold: an empty cache folder; warm: the same folder again. Each run is a fresh process (the
`integrate check` command), so interpreter start-up and imports are included. Prints the time
of each, the number of findings per rule, and a seeded random sample to judge by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path


def run_check(target: str, cache: str) -> tuple[float, list[dict]]:
    env = dict(os.environ, INTEGRATE_CACHE_DIR=cache)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "check", target, "--format", "json"], capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"check failed: {proc.stderr.strip()}")
    return elapsed, json.loads(proc.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import diffusers

    target = str(Path(diffusers.__file__).parent)
    files = sum(1 for _ in Path(target).rglob("*.py"))
    with tempfile.TemporaryDirectory() as cache:
        cold, findings = run_check(target, cache)
        warm, again = run_check(target, cache)
    assert findings == again, "the cache changed the findings"
    print(f"diffusers {diffusers.__version__}: {files} files, {os.cpu_count()} cores")
    print(f"cold: {cold:.2f} s   warm: {warm:.2f} s   findings: {len(findings)}")
    for rule, n in sorted(Counter(f["rule"] for f in findings).items()):
        print(f"  {rule}: {n}")
    rng = random.Random(args.seed)
    print(f"\nsample of {args.sample} (seed {args.seed}):")
    for f in rng.sample(findings, min(args.sample, len(findings))):
        print(f"  {f['rule']} {Path(f['path']).relative_to(target)}:{f['line']} {f['message']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
