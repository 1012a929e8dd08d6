"""Wall time and outcome of the blocks stage on the bundled example (and, with --ldm, on the
original latent-diffusion UNetModel through benchmarks/porter_real_models.py).

    python benchmarks/blocks_stage.py [--ldm] [--runs N]

Prints, per run: the stage's wall time, the proof job's, the number of full-parity runs, what
was substituted and the share of parameters in diffusers blocks. The stage's time is most of
it in full-model parity (each side in its own sandbox) and one proof job.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "tiny-dit"


def example_run(work: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "agent.cli", str(EXAMPLE), "--out", str(work / "out"), "--llm", "none",
                           "--runs-dir", str(work / "runs"), "--run-id", "bench", "--json"], capture_output=True, text=True, cwd=work)
    if proc.returncode != 0:
        raise SystemExit(f"integrate failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads((work / "runs" / "bench" / "run.json").read_text())["stages"]


def ldm_run(work: Path) -> dict:
    spec = importlib.util.spec_from_file_location("porter_real_models", ROOT / "benchmarks" / "porter_real_models.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    row = bench.run_model("ldm UNetModel", bench.ldm_unet, work)
    if row.get("status") != "passed":
        raise SystemExit(f"ldm run failed: {row.get('error')}")
    return json.loads((next((work / "runs").iterdir()) / "run.json").read_text())["stages"]


def report(name: str, stages: dict) -> float:
    stage = stages["blocks"]
    r = stage["result"]
    print(f"{name}: blocks stage {stage['seconds']:.1f}s (proof {r['proof_seconds']}s, {r['parity_runs']} full parity run(s); "
          f"port stage {stages['port']['seconds']:.1f}s for comparison), {r['status']}: "
          f"{', '.join(s['reference_class'] + ' -> ' + s['block'] for s in r['substituted'])}; "
          f"{r['share']['in_diffusers_blocks']:,} of {r['share']['total_parameters']:,} parameters in diffusers blocks "
          f"({r['share']['diffusers_share']:.1%})")
    return stage["seconds"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ldm", action="store_true", help="also the latent-diffusion UNetModel (needs stable-diffusion-sdkit)")
    parser.add_argument("--runs", type=int, default=1, help="example runs (the median is printed)")
    args = parser.parse_args()
    times = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="integrate-blocks-") as tmp:
            times.append(report("tiny-dit", example_run(Path(tmp))))
    if args.runs > 1:
        print(f"tiny-dit: median blocks stage {statistics.median(times):.1f}s over {args.runs} runs")
    if args.ldm:
        with tempfile.TemporaryDirectory(prefix="integrate-blocks-ldm-") as tmp:
            report("ldm UNetModel", ldm_run(Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
