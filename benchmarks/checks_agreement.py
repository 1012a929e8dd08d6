"""Agreement of `integrate check` (R002 copies, R004 init halves, R005 dummies) with diffusers' own
`utils/check_copies.py`, `check_inits.py` and `check_dummies.py`, on the same tree.

    python benchmarks/checks_agreement.py --utils DIR [--seed 0] [--plants 12]

DIR holds the three scripts from the public diffusers repository (and optionally its
pyproject.toml); they are not part of this project and are never committed. The tree is a copy of
the installed diffusers package laid out as a checkout (src/diffusers). diffusers' scripts run in
the sandbox, as fetched code does. First the untouched tree is compared, then the same tree with
seeded plants: edited copies, edited copy sources, removed and stale dummies, removed halves of
lazy `__init__` entries.

check_dummies stops at the first backend that differs, and check_inits walks `src/transformers`
(a leftover from transformers: on diffusers it checks nothing), so both are also driven through
their own functions for every backend and every `__init__`: their semantics, all of the tree.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import sys
import tempfile
from pathlib import Path

PYPROJECT = """[tool.ruff]
line-length = 119

[tool.ruff.format]
quote-style = "double"
indent-style = "space"
skip-magic-trailing-comma = false
line-ending = "auto"
"""

# Drives diffusers' own functions over every backend and every lazy __init__ (their semantics).
DRIVER = r'''
import json, os, sys
sys.path.insert(0, "utils")
import check_copies, check_dummies, check_inits
out = {"copies": [], "dummies": [], "inits": []}
for filename in sorted(__import__("glob").glob("src/diffusers/**/*.py", recursive=True)):
    try:
        for name, line in check_copies.is_copy_consistent(filename):
            out["copies"].append([filename, name])
    except Exception as exc:
        out["copies"].append([filename, "ERROR " + str(exc)[:200]])
files = check_dummies.create_dummy_files()
short = {"torch": "pt"}
for backend, text in files.items():
    path = os.path.join("src/diffusers/utils", f"dummy_{short.get(backend, backend)}_objects.py")
    actual = open(path).read() if os.path.isfile(path) else ""
    if actual != text:
        out["dummies"].append(backend)
for root, _, names in os.walk("src/diffusers"):
    if "__init__.py" in names:
        fname = os.path.join(root, "__init__.py")
        try:
            objects = check_inits.parse_init(fname)
        except Exception as exc:
            out["inits"].append([fname, "ERROR " + str(exc)[:200]])
            continue
        if objects is not None and check_inits.analyze_results(*objects):
            out["inits"].append([fname, check_inits.analyze_results(*objects)[0][:200]])
json.dump(out, open("theirs.json", "w"))
'''


def build_repo(utils: Path, where: Path) -> Path:
    import diffusers

    repo = where / "repo"
    shutil.copytree(Path(diffusers.__file__).parent, repo / "src" / "diffusers", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "utils").mkdir()
    for name in ("check_copies.py", "check_inits.py", "check_dummies.py"):
        shutil.copy(utils / name, repo / "utils" / name)
    (repo / "pyproject.toml").write_text((utils / "pyproject.toml").read_text() if (utils / "pyproject.toml").is_file() else PYPROJECT)
    (repo / "driver.py").write_text(DRIVER)
    return repo


def theirs(repo: Path) -> dict:
    """diffusers' scripts as they run (exit codes) and driven over everything (findings)."""
    import sandbox

    ro = [Path(shutil.which("ruff")).parent] if shutil.which("ruff") else []
    res = sandbox.run([sys.executable, "driver.py"], repo, ro_paths=ro, limits=sandbox.Limits(wall_s=1200))
    if not (repo / "theirs.json").is_file():
        raise SystemExit(f"diffusers' checkers did not run: {res.reason} {res.stderr[-500:]}")
    out = json.loads((repo / "theirs.json").read_text())
    for script in ("check_copies.py", "check_dummies.py", "check_inits.py"):
        r = sandbox.run([sys.executable, f"utils/{script}"], repo, ro_paths=ro, limits=sandbox.Limits(wall_s=1200))
        out[f"{script} exit"] = r.returncode
    return out


def ours(repo: Path) -> dict:
    from agent.checks import check_paths

    src = repo / "src" / "diffusers"
    found = check_paths([src], select=["R002", "R004", "R005"], use_cache=False, include_deprecated=True)
    out = {"copies": [], "dummies": [], "inits": []}
    for f in found:
        rel = "src/diffusers/" + Path(f.path).resolve().relative_to(src.resolve()).as_posix()
        if f.rule == "R002":
            m = re.search(r"diffusers\.(\S+?)(?: \(|$)", f.message)
            out["copies"].append([rel, m.group(1) if m else f.message])
        elif f.rule == "R004":
            out["inits"].append([rel, f.message[:200]])
        elif f.rule == "R005":
            m = re.search(r"\((\w+)\) has no dummy", f.message)
            stem = re.match(r"dummy_(\w+)_objects$", Path(f.path).stem)
            backend = m.group(1) if m else ({"pt": "torch"}.get(stem.group(1), stem.group(1)) if stem else f.message)
            if backend not in out["dummies"]:
                out["dummies"].append(backend)
    return out


def plant(repo: Path, seed: int, n: int) -> list[str]:
    """Seeded perturbations of the tree; returns what was done."""
    rng = random.Random(seed)
    src = repo / "src" / "diffusers"
    done = []
    files = sorted(p for p in src.rglob("*.py") if "Copied from" in p.read_text())
    # edit inside n annotated copies: a statement line gains a trailing comment
    for path in rng.sample(files, n):
        lines = path.read_text().split("\n")
        spots = [i for i, line in enumerate(lines) if line.lstrip().startswith("# Copied from diffusers.")]
        i = rng.choice(spots)
        for j in range(i + 2, min(i + 30, len(lines))):
            if lines[j].strip().startswith("return "):
                lines[j] = lines[j] + "  # planted"
                break
        path.write_text("\n".join(lines))
        done.append(f"copy edited in {path.relative_to(repo)}")
    # remove n // 3 dummy classes, add n // 3 stale ones
    pt = src / "utils" / "dummy_pt_objects.py"
    text = pt.read_text()
    names = re.findall(r"^class (\w+)\(metaclass=DummyObject\):", text, re.M)
    for name in rng.sample(names, max(1, n // 3)):
        text = re.sub(rf"\n\nclass {name}\(metaclass=DummyObject\):\n(?:    .*\n|\n(?=    ))*", "\n", text, count=1)
        done.append(f"dummy removed: {name}")
    text += '\n\nclass StalePlantedModel(metaclass=DummyObject):\n    _backends = ["torch"]\n\n    def __init__(self, *args, **kwargs):\n        requires_backends(self, ["torch"])\n'
    done.append("stale dummy added: StalePlantedModel")
    pt.write_text(text)
    # remove the TYPE_CHECKING import of one pipeline in n // 3 pipeline subpackages
    inits = sorted(p for p in (src / "pipelines").glob("*/__init__.py") if "TYPE_CHECKING" in p.read_text())
    for init in rng.sample(inits, max(1, n // 3)):
        lines = init.read_text().split("\n")
        spots = [i for i, line in enumerate(lines) if re.match(r"^        from \.pipeline_\w+ import \w+$", line)]
        if spots:
            i = rng.choice(spots)
            done.append(f"TYPE_CHECKING import removed in {init.relative_to(repo)}: {lines[i].strip()}")
            del lines[i]
            init.write_text("\n".join(lines))
    return done


def compare(a: dict, b: dict) -> dict:
    out = {}
    for key in ("copies", "dummies", "inits"):
        if key == "inits":
            ta, tb = {x[0] for x in a[key]}, {x[0] for x in b[key]}
        elif key == "copies":
            ta, tb = {tuple(x) for x in a[key]}, {tuple(x) for x in b[key]}
        else:
            ta, tb = set(a[key]), set(b[key])
        out[key] = {"theirs": len(ta), "ours": len(tb), "both": len(ta & tb),
                    "only_theirs": sorted(map(str, ta - tb))[:20], "only_ours": sorted(map(str, tb - ta))[:20]}
    return out


def run(utils: Path, seed: int, n: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="agreement-") as tmp:
        repo = build_repo(utils, Path(tmp))
        pristine = compare(theirs(repo), ours(repo))
        planted = plant(repo, seed, n)
        for stale in (repo / "theirs.json",):
            stale.unlink()
        after_theirs = theirs(repo)
        after = compare(after_theirs, ours(repo))
        exits = {k: v for k, v in after_theirs.items() if k.endswith("exit")}
    return {"pristine": pristine, "planted": planted, "after": after, "their_exit_codes_after_plants": exits}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utils", type=Path, required=True, help="folder with diffusers' check_copies.py, check_inits.py, check_dummies.py")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plants", type=int, default=12)
    args = parser.parse_args()
    result = run(args.utils, args.seed, args.plants)
    for phase in ("pristine", "after"):
        print(f"{phase}:")
        for key, r in result[phase].items():
            print(f"  {key:<8} theirs {r['theirs']:>4}  ours {r['ours']:>4}  both {r['both']:>4}")
            for x in r["only_theirs"]:
                print(f"    only theirs: {x}")
            for x in r["only_ours"]:
                print(f"    only ours:   {x}")
        if phase == "pristine":
            print(f"plants (seed {args.seed}): {len(result['planted'])}")
    print(f"their scripts' exit codes on the planted tree: {result['their_exit_codes_after_plants']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
