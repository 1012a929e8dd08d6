"""Port every model of the real-model corpus with `integrate` and print where each one got.

    python benchmarks/real_models.py [NAME ...] [--timeout S] [--work DIR] [--keep DIR] [--json OUT] [--markdown OUT]
                                     [--tree CHECKOUT] [--given-inputs]

For each entry of benchmarks/corpus/entries.py it builds the Hub-style folder if needed
(benchmarks/corpus/build.py: the package's files unmodified, config.json, seeded weights; a
folder whose upstream files no longer match upstream.sha256 is rebuilt), then runs

    integrate FOLDER --out TMP/out/NAME --llm none --json

offline (HF_HUB_OFFLINE=1), on CPU, killed after --timeout seconds, and prints one row per model:
the stage reached, parity (max abs, or why there is none), the wall and CPU time, and what was left
(the port's untranslated calls, the third-party packages it still imports) or the one-line reason
the run stopped. The goal of issue 13 is every row `passed` within 120 s. Exit status: 0 when
every model passed within 120 s, 1 otherwise, 2 when the corpus could not be set up.

--tree measures another checkout of the tool; --given-inputs passes each entry's own
`inputs(seed)` as `--inputs FILE`, which separates input inference from the rest of the porter.
Run it with the interpreter that has the corpus requirements (benchmarks/corpus/requirements.txt);
a model whose imports are missing is reported as such.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from corpus.build import DEFAULT_WORK, build, upstream_changed  # noqa: E402
from corpus.entries import BY_NAME, ENTRIES, Entry  # noqa: E402

GOAL_S = 120.0


class CpuGroup:
    """A cgroup that the run and every process it starts (sandboxed jobs included) belong to, to
    read their CPU time: getrusage misses processes that bubblewrap reaps inside its namespace.
    cgroup v1 (cpuacct) or v2; `seconds()` is None where neither can be created."""

    def __init__(self) -> None:
        self.path: Path | None = None
        name = f"integrate-corpus-{os.getpid()}-{time.monotonic_ns()}"
        for root, procs in ((Path("/sys/fs/cgroup/cpuacct"), "tasks"), (Path("/sys/fs/cgroup"), "cgroup.procs")):
            if (root / procs).exists() and (root / "cpuacct.usage").exists() | (root / "cgroup.controllers").exists():
                try:
                    (root / name).mkdir()
                except OSError:
                    continue
                self.path, self.procs = root / name, procs
                return

    def join(self) -> None:
        """Called in the child before exec."""
        if self.path is not None:
            (self.path / self.procs).write_text(str(os.getpid()))

    def seconds(self) -> float | None:
        if self.path is None:
            return None
        if (self.path / "cpuacct.usage").exists():
            return int((self.path / "cpuacct.usage").read_text()) / 1e9
        stat = dict(line.split() for line in (self.path / "cpu.stat").read_text().splitlines())
        return int(stat["usage_usec"]) / 1e6

    def remove(self) -> None:
        if self.path is not None:
            try:
                self.path.rmdir()
            except OSError:
                pass


def run_integrate(folder: Path, scratch: Path, timeout: float, tree: Path = ROOT, inputs_file: Path | None = None) -> tuple[dict | None, str, float, float | None]:
    """(summary or None, stderr tail, wall seconds, CPU seconds or None); the whole process group is
    killed at the timeout. `tree` is the checkout of the tool to measure (this one by default)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH")]))}
    env.pop("ANTHROPIC_API_KEY", None)
    cmd = [sys.executable, "-m", "agent.cli", str(folder), "--out", str(scratch / "out" / folder.name),
           "--llm", "none", "--device", "cpu", "--json", "--runs-dir", str(scratch / "runs")]
    if inputs_file is not None:
        cmd += ["--inputs", str(inputs_file)]
    cpu = CpuGroup()
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=scratch, env=env,
                            start_new_session=True, preexec_fn=cpu.join)
    try:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return None, f"killed after {timeout:.0f} s (timeout)", time.monotonic() - start, cpu.seconds()
        seconds, cpu_s = time.monotonic() - start, cpu.seconds()
    finally:
        cpu.remove()
    try:
        return json.loads(out), err, seconds, cpu_s
    except json.JSONDecodeError:
        lines = [line for line in err.strip().splitlines() if line.strip()]
        return None, lines[-1] if lines else f"exit {proc.returncode}, no summary", seconds, cpu_s


def stage_result(summary: dict, stage: str) -> dict:
    run = json.loads((Path(summary["run_dir"]) / "run.json").read_text())
    return (run["stages"].get(stage) or {}).get("result") or {}


ACCEPTED_IMPORTS = {"torch", "diffusers", "numpy", "__future__"}


def kept_imports(model_file: Path) -> tuple[list[str], list[str]]:
    """Packages the port imports that are neither the standard library nor what a diffusers model
    may use (torch, numpy, diffusers): (imported unconditionally at module level, imported only
    inside a try, a branch or a function)."""
    tree = ast.parse(model_file.read_text())
    top = {id(node) for node in tree.body}
    required, optional = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = {node.module.split(".")[0]}
        else:
            continue
        (required if id(node) in top else optional).update(names)
    keep = [n for n in sorted(required | optional) if n not in ACCEPTED_IMPORTS and n not in sys.stdlib_module_names]
    return [n for n in keep if n in required], [n for n in keep if n not in required]


def left_summary(port: dict) -> str:
    left = (port.get("codemods") or {}).get("left") or []
    if not left:
        return "nothing left"
    kinds: dict[str, int] = {}
    for item in left:
        kinds[item["what"]] = kinds.get(item["what"], 0) + 1
    return f"{len(left)} left: " + ", ".join(f"{what}" + (f" x{n}" if n > 1 else "") for what, n in kinds.items())


def write_inputs_file(entry: Entry, scratch: Path) -> Path:
    """The entry's inputs(seed) as an inputs file (docs: integrate --inputs)."""
    path = scratch / "inputs" / f"{entry.name}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("import torch\n" + entry.inputs)
    return path


def measure(entry: Entry, work: Path, scratch: Path, timeout: float, tree: Path = ROOT, given_inputs: bool = False) -> dict:
    row = {"model": entry.name, "family": entry.family, "source": f"{entry.package}=={entry.version}", "license": entry.license}
    record = build(entry, work)
    if "error" in record:
        return row | {"stage": "build", "status": "not built", "parity": None, "seconds": None, "reason": record["error"]}
    folder = Path(record["folder"])
    inputs_file = write_inputs_file(entry, scratch) if given_inputs else None
    summary, err, seconds, cpu_s = run_integrate(folder, scratch, timeout, tree, inputs_file)
    row["seconds"] = round(seconds, 1)
    # CPU time of the run and every sandboxed job: a figure the machine's load moves less.
    row["cpu_s"] = None if cpu_s is None else round(cpu_s, 1)
    row["load_avg_1min"] = round(os.getloadavg()[0], 1)  # times are only comparable at similar load
    if summary is None:
        return row | {"stage": "?", "status": "crashed" if "timeout" not in err else "timeout", "parity": None, "reason": err.strip()[:300]}
    row |= {"stage": summary["stage_reached"], "status": summary["status"], "run_dir": summary["run_dir"],
            "stage_seconds": {k: v.get("seconds") for k, v in summary["stages"].items()}}
    port = stage_result(summary, "port")
    parity = summary.get("parity") or port.get("parity")
    row["parity"] = None if not parity else {k: parity.get(k) for k in ("passed", "max_abs_diff", "cosine", "problems")}
    row["left"] = (port.get("codemods") or {}).get("left")
    plan, scaffold = stage_result(summary, "plan"), stage_result(summary, "scaffold")
    row["class_name"] = plan.get("class_name")
    if scaffold.get("model_file") and Path(scaffold["model_file"]).is_file():
        row["kept_imports"], row["optional_imports"] = kept_imports(Path(scaffold["model_file"]))
    if summary["status"] == "passed":
        row["reason"] = left_summary(port)
        if row.get("kept_imports"):
            row["reason"] += "; keeps imports of " + ", ".join(row["kept_imports"])
    else:
        row["reason"] = (summary.get("error") or "").strip().splitlines()[0][:300] if summary.get("error") else left_summary(port)
    if upstream_changed(folder):
        row["reason"] += " (the run changed the source folder!)"
    return row


def parity_text(row: dict) -> str:
    p = row.get("parity")
    if not p:
        return "-"
    if p.get("max_abs_diff") is None:
        return "passed" if p.get("passed") else "failed"
    return f"{'ok' if p.get('passed') else 'FAIL'} {float(p['max_abs_diff']):.1e}"


def table(rows: list[dict]) -> str:
    head = ["model", "family", "stage reached", "parity (max abs)", "wall (CPU)", "left / reason"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        status = r["status"] if r["status"] == "passed" else f"{r['stage']} ({r['status']})"
        cpu = "" if r.get("cpu_s") is None else f" ({r['cpu_s']:.0f} s)"
        secs = "-" if r.get("seconds") is None else f"{r['seconds']:.0f} s{cpu}" + (" over 2 min" if r["seconds"] > GOAL_S else "")
        reason = r.get("reason", "").replace("|", "\\|")
        lines.append(f"| {r['model']} | {r['family']} | {status} | {parity_text(r)} | {secs} | {reason} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="corpus entries to run (default: all)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before a run is killed (default 600; the goal is 120)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="corpus build folder (default benchmarks/corpus/.cache)")
    parser.add_argument("--keep", type=Path, help="keep the ports and run folders in a new subfolder of this one (default: a temporary folder, removed)")
    parser.add_argument("--json", type=Path, help="write the rows as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the table as markdown here")
    parser.add_argument("--tree", type=Path, default=ROOT, help="checkout of the tool to measure (default: this one)")
    parser.add_argument("--given-inputs", action="store_true",
                        help="pass each entry's own inputs(seed) with --inputs instead of letting integrate work them out")
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in BY_NAME]
    if unknown:
        print(f"error: unknown corpus entry {unknown[0]!r} (known: {', '.join(BY_NAME)})", file=sys.stderr)
        return 2
    if args.keep:  # a new folder per invocation: a port never lands on an earlier one
        scratch = args.keep.resolve() / time.strftime("%Y%m%d-%H%M%S")
        scratch.mkdir(parents=True)
    else:
        scratch = Path(tempfile.mkdtemp(prefix="integrate-corpus-"))
    commit = subprocess.run(["git", "-C", str(args.tree), "log", "-1", "--format=%h %cs"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(args.tree), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
    print(f"integrate from {args.tree.resolve()} at {commit or 'unknown commit'}{' with uncommitted changes' if dirty else ''}", flush=True)
    rows = []
    try:
        for entry in [BY_NAME[n] for n in args.names] or ENTRIES:
            row = measure(entry, args.work.resolve(), scratch, args.timeout, args.tree.resolve(), args.given_inputs)
            rows.append(row)
            secs = "-" if row.get("seconds") is None else f"{row['seconds']:.0f}s/{row.get('cpu_s') or 0:.0f}s"
            print(f"{row['model']:<24} {row['stage']:<8} {row['status']:<10} {parity_text(row):<14} {secs:>9}  {row['reason']}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    if args.markdown:
        args.markdown.write_text(table(rows) + "\n")
    ok = [r for r in rows if r["status"] == "passed" and r["seconds"] <= GOAL_S]
    loads = [r["load_avg_1min"] for r in rows if "load_avg_1min" in r]
    load = f" (1-minute load average {min(loads)}-{max(loads)} on {os.cpu_count()} CPUs)" if loads else ""
    print(f"\n{len(ok)}/{len(rows)} passed with parity within {GOAL_S:.0f} s{load}")
    return 0 if len(ok) == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
