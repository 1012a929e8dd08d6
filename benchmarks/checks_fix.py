"""`integrate check --fix` over a copy of the installed diffusers: does any fix break the code?

    python benchmarks/checks_fix.py [--perturb N] [--seed S]

The copy is a git checkout (src/diffusers). With --perturb, N seeded breakages that --fix should
repair are made first: `@torch.no_grad()` removed from pipelines, copy sources edited (every copy of
them drifts, as after a fix to the source), copies edited, models unregistered from the top-level
`__init__`. Then `integrate check --fix --include-deprecated` runs, and every changed file is
verified independently of the tool's own gates: it parses, ruff's F821/F811 and total F-codes do
not rise, and its module imports in a fresh sandboxed process. Prints the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@e", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@e"}
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=env).stdout


def ruff_f(repo: Path, files: list[str]) -> dict[str, Counter]:
    """F-codes per file; in `__init__.py` files re-exports (F401/F403/F405) are not counted, as in
    diffusers' own ruff configuration and in --fix's gate."""
    from ruff.__main__ import find_ruff_bin

    from agent.checks.fix import INIT_IGNORES

    out: dict[str, Counter] = {f: Counter() for f in files}
    for group, extra in (([f for f in files if not f.endswith("__init__.py")], []), ([f for f in files if f.endswith("__init__.py")], ["--ignore", INIT_IGNORES])):
        if not group:
            continue
        proc = subprocess.run([find_ruff_bin(), "check", "--isolated", "--select", "F", *extra, "--output-format", "json", *group],
                              cwd=repo, capture_output=True, text=True)
        for d in json.loads(proc.stdout or "[]"):
            out.setdefault(os.path.relpath(d["filename"], repo), Counter())[d["code"]] += 1
    return out


def perturb(src: Path, n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    done = []
    pipelines = sorted(p for p in (src / "pipelines").rglob("pipeline_*.py") if "    @torch.no_grad()\n" in p.read_text() and "deprecated" not in p.parts)
    for p in rng.sample(pipelines, n):
        text = p.read_text()
        p.write_text(text.replace("    @torch.no_grad()\n", "", 1))
        done.append(f"no_grad removed: {p.relative_to(src)}")
    annotated = Counter()
    for p in src.rglob("*.py"):
        for m in re.finditer(r"# Copied from diffusers\.(\S+)", p.read_text()):
            annotated[m.group(1)] += 1
    from agent.checks.copies import source_block

    popular = [t for t, c in annotated.most_common(40) if c >= 3]
    for target in rng.sample(popular, min(n, len(popular))):
        found = source_block(src, target)
        if found is None:
            continue
        header, code, path = found
        text = path.read_text()
        lines = code.split("\n")
        spot = next((i for i, line in enumerate(lines) if line.strip().startswith("return ")), None)
        if spot is None:
            continue
        new_code = "\n".join(lines[:spot] + [lines[spot] + "  # source edited"] + lines[spot + 1:])
        path.write_text(text.replace(header + code, header + new_code, 1))
        done.append(f"source edited: {target} ({annotated[target]} copies)")
    copies = sorted(p for p in src.rglob("*.py") if "# Copied from diffusers." in p.read_text())
    for p in rng.sample(copies, n):
        lines = p.read_text().split("\n")
        spots = [i for i, line in enumerate(lines) if line.lstrip().startswith("# Copied from diffusers.")]
        i = rng.choice(spots)
        for j in range(i + 2, min(i + 40, len(lines))):
            if lines[j].strip().startswith("return "):
                lines[j] += "  # copy edited"
                break
        p.write_text("\n".join(lines))
        done.append(f"copy edited: {p.relative_to(src)}")
    top = src / "__init__.py"
    text = top.read_text()
    models = sorted(set(re.findall(r'^            "(\w+Transformer\w*Model)",\n', text, re.M)))
    for name in rng.sample(models, min(max(1, n // 2), len(models))):
        text = text.replace(f'            "{name}",\n', "", 1).replace(f"            {name},\n", "", 1)
        done.append(f"unregistered at the top level: {name}")
    top.write_text(text)
    return done


def import_all(src_parent: Path, modules: list[str]) -> dict[str, str]:
    """Import each module in a fresh forked child of one sandboxed process; module -> error."""
    import sandbox

    with tempfile.TemporaryDirectory(prefix="fixbench-") as tmp:
        work = Path(tmp)
        manifest = {"path": [str(src_parent)], "candidates": [{"files": {}, "search": {}, "modules": [m], "attrs": []} for m in modules]}
        (work / "manifest.json").write_text(json.dumps(manifest))
        probe = work / "probe.py"
        probe.write_text((Path(__file__).resolve().parent.parent / "agent" / "checks" / "import_probe.py").read_text())
        res = sandbox.run([sys.executable, str(probe), str(work / "manifest.json"), str(work / "result.json")], work,
                          ro_paths=[src_parent], limits=sandbox.Limits(wall_s=1800))
        try:
            results = json.loads((work / "result.json").read_text())
        except (OSError, ValueError):
            raise SystemExit(f"import check did not run: {res.reason} {res.stderr[-400:]}") from None
    return {m: e for m, e in zip(modules, results, strict=True) if e}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--perturb", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import diffusers

    with tempfile.TemporaryDirectory(prefix="fixbench-") as tmp:
        repo = Path(tmp) / "diffusers"
        src = repo / "src" / "diffusers"
        shutil.copytree(Path(diffusers.__file__).parent, src, ignore=shutil.ignore_patterns("__pycache__"))
        git(repo, "init", "-q")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "installed diffusers")
        done = perturb(src, args.perturb, args.seed) if args.perturb else []
        if done:
            git(repo, "add", "-A")
            git(repo, "commit", "-qm", "perturbed")
        env = {**os.environ, "INTEGRATE_CACHE_DIR": str(Path(tmp) / "cache")}
        proc = subprocess.run([sys.executable, "-m", "agent.cli", "check", "src/diffusers", "--fix", "--no-cache", "--include-deprecated",
                               "--select", "P001,R001,R002", "--format", "json"], cwd=repo, capture_output=True, text=True, env=env)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"check --fix failed: {proc.stderr[-800:]}")
        applied = [line for line in proc.stderr.splitlines() if line.startswith("fixed ")]
        dropped = [line for line in proc.stderr.splitlines() if line.startswith("fix not applied")]
        left = Counter(f["rule"] for f in json.loads(proc.stdout))
        changed = [f for f in git(repo, "diff", "--name-only").split() if f.endswith(".py")]
        before_dir = Path(tmp) / "before"
        for f in changed:
            (before_dir / f).parent.mkdir(parents=True, exist_ok=True)
            (before_dir / f).write_text(git(repo, "show", f"HEAD:{f}"))
        before = ruff_f(before_dir, changed)
        after = ruff_f(repo, changed)
        syntax = []
        for f in changed:
            try:
                compile((repo / f).read_text(), f, "exec", dont_inherit=True)
            except SyntaxError as exc:
                syntax.append(f"{f}: {exc}")
        rose = {f: (sum(before[f].values()), sum(after.get(f, Counter()).values())) for f in changed
                if sum(after.get(f, Counter()).values()) > sum(before[f].values())}
        undefined = sum(after.get(f, Counter())["F821"] + after.get(f, Counter())["F811"] for f in changed)
        undefined_before = sum(before[f]["F821"] + before[f]["F811"] for f in changed)
        modules = sorted({"diffusers." + str(Path(f).relative_to("src/diffusers").with_suffix("")).replace("/", ".").removesuffix(".__init__") for f in changed})
        failed = import_all(repo / "src", modules) if modules else {}
        baseline_failed = {}
        if failed:  # were they failing before the fixes too?
            work = Path(tmp) / "baseline"
            shutil.copytree(repo, work)
            git(work, "checkout", "-q", "--", ".")
            baseline_failed = import_all(work / "src", sorted(failed))
    print(f"perturbations (seed {args.seed}): {len(done)}")
    for d in done:
        print(f"  {d}")
    print(f"fixes applied: {len(applied)}, dropped: {len(dropped)}")
    for d in applied:
        print(f"  {d}")
    for d in dropped:
        print(f"  {d}")
    print(f"findings left (P001/R001/R002): {dict(left)}")
    print(f"changed files: {len(changed)}; syntax errors: {len(syntax)}; F821+F811 before {undefined_before}, after {undefined}; "
          f"files whose F-codes rose: {len(rose)}; modules imported: {len(modules)}, failed: {len(failed)} "
          f"(of which failing before the fixes too: {len(baseline_failed)})")
    for s in syntax:
        print(f"  syntax: {s}")
    for f, (a, b) in rose.items():
        print(f"  F-codes rose in {f}: {a} -> {b}")
    for m, e in failed.items():
        print(f"  import failed: {m}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
