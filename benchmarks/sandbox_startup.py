"""Start-up overhead of the sandbox: wall time of `sandbox.run([python, -c, pass], ws)`.

    python benchmarks/sandbox_startup.py [--runs N]

Prints the median and the spread over N runs (after one warm-up), next to the same command run
directly, so the figure is the sandbox's own cost on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sandbox  # noqa: E402


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    cmd = [sys.executable, "-c", "pass"]
    with tempfile.TemporaryDirectory() as ws:
        first = sandbox.run(cmd, ws)  # warm-up, and the isolation this machine gives
        if not first.ok:
            sys.exit(f"the sandbox could not run python: {first.one_line_error()}")
        sandboxed = [_timed(lambda: sandbox.run(cmd, ws)) for _ in range(args.runs)]
        direct = [_timed(lambda: subprocess.run(cmd, check=True)) for _ in range(args.runs)]
    for name, times in (("sandbox.run", sandboxed), ("direct", direct)):
        print(f"{name:<12} median {statistics.median(times) * 1000:6.1f} ms  "
              f"min {min(times) * 1000:6.1f} ms  max {max(times) * 1000:6.1f} ms  ({args.runs} runs)")
    print(f"isolation: {first.isolation}; overhead (median difference): "
          f"{(statistics.median(sandboxed) - statistics.median(direct)) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
