"""Lay out the real-model corpus: one folder per model, like a Hub repo, from pinned PyPI wheels.

    python benchmarks/corpus/build.py [NAME ...] [--work DIR] [--force] [--list]

For each entry of benchmarks/corpus/entries.py:
1. `pip download --no-deps` the pinned release into WORK/wheels and check the wheel's sha256;
2. copy the model's module files out of the wheel unmodified (each checked against the wheel's
   own RECORD hash), at the path the package gives them, with the license file(s);
3. write config.json (the constructor arguments, or the nested config and the factory that
   builds from it), a model card README.md naming the source, version and license, and
   upstream.sha256 (`sha256sum -c upstream.sha256` in the folder checks every upstream file);
4. build the reference model in the sandbox under a fixed seed and save its weights to
   model.safetensors (benchmarks/corpus/make_weights.py), checking that the forward on the
   entry's inputs is finite, not constant, and reproduced by a model loaded from the file.

Folders land in WORK/models/NAME (default WORK: benchmarks/corpus/.cache, git-ignored); WORK/builds/
NAME.json records what was built. A later run reuses a folder only when the entry, this script and
the weights job are unchanged and every upstream file still matches upstream.sha256.
Run it with the interpreter that has the corpus requirements (benchmarks/corpus/requirements.txt);
an entry whose imports are missing is laid out but gets no weights, and says which are missing.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import importlib.util
import io
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from entries import BY_NAME, ENTRIES, Entry  # noqa: E402

import sandbox  # noqa: E402

DEFAULT_WORK = HERE / ".cache"
SEED = 0
LAYOUT_VERSION = 1  # bump when lay_out() or model_card() writes something different
JOB = HERE / "make_weights.py"


class BuildError(Exception):
    """A corpus entry could not be laid out; the message is one line."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_wheel(entry: Entry, work: Path) -> Path:
    """The pinned wheel, downloaded once with pip and checked against the table's sha256."""
    dest = work / "wheels"
    dest.mkdir(parents=True, exist_ok=True)
    stem = f"{entry.package.replace('-', '_')}-{entry.version}-"
    cached = [w for w in dest.glob(f"{stem}*.whl") if sha256_of(w.read_bytes()) == entry.wheel_sha256]
    if cached:
        return cached[0]
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
         f"{entry.package}=={entry.version}", "-d", str(dest)],
        capture_output=True, text=True,
    )
    wheels = [w for w in dest.glob(f"{stem}*.whl")]
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise BuildError(f"pip download {entry.package}=={entry.version} failed: {last}")
    for wheel in wheels:
        if sha256_of(wheel.read_bytes()) == entry.wheel_sha256:
            return wheel
    raise BuildError(f"{wheels[0].name} does not have the pinned sha256 {entry.wheel_sha256}")


def record_hashes(wheel: zipfile.ZipFile) -> dict[str, str]:
    """path -> sha256 hex, from the wheel's RECORD (which stores urlsafe base64 digests)."""
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/RECORD"))
    hashes = {}
    for row in csv.reader(io.StringIO(wheel.read(name).decode())):
        if len(row) >= 2 and row[1].startswith("sha256="):
            digest = row[1].removeprefix("sha256=")
            hashes[row[0]] = base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4)).hex()
    return hashes


def config_json(entry: Entry) -> dict:
    head = {"architectures": [entry.cls]}
    if entry.factory:
        head["_factory"] = entry.factory
    return {**head, **entry.config}


def lay_out(entry: Entry, wheel_path: Path, dest: Path) -> list[tuple[str, str]]:
    """Copy the upstream files (checked against RECORD) and write the config; returns (path, sha256)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    upstream = []
    with zipfile.ZipFile(wheel_path) as wheel:
        hashes = record_hashes(wheel)
        for rel in entry.files:
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if rel in entry.placeholders:
                target.write_text("")
                continue
            data = wheel.read(rel)
            if sha256_of(data) != hashes.get(rel):
                raise BuildError(f"{rel} in {wheel_path.name} does not match the wheel's RECORD")
            target.write_bytes(data)
            upstream.append((rel, hashes[rel]))
        for i, rel in enumerate(entry.license_files):
            data = wheel.read(rel)
            name = "LICENSE" if i == 0 else Path(rel).name
            (dest / name).write_bytes(data)
            upstream.append((name, sha256_of(data)))
    (dest / "config.json").write_text(json.dumps(config_json(entry), indent=2) + "\n")
    (dest / "upstream.sha256").write_text("".join(f"{digest}  {rel}\n" for rel, digest in upstream))
    (dest / "README.md").write_text(model_card(entry, wheel_path, upstream))
    return upstream


def model_card(entry: Entry, wheel_path: Path, upstream: list[tuple[str, str]]) -> str:
    pypi = f"https://pypi.org/project/{entry.package}/{entry.version}/"
    if entry.factory:
        module, _, fn = entry.factory.partition(":")
        build = (f"model = {fn}(config)  # {entry.cls}; the factory reads the nested config",
                 f"from {module} import {fn}")
    else:
        build = (f"model = {entry.cls}(**{{k: v for k, v in config.items() if k != 'architectures'}})"
                 "  # lists as tuples where the default is a tuple",
                 f"from {entry.module} import {entry.cls}")
    lines = [
        "---",
        f"license: {entry.license.lower()}",
        "library_name: pytorch",
        "tags:",
        "  - diffusion",
        "---",
        "",
        f"# {entry.cls} ({entry.name}, small, seeded weights)",
        "",
        f"{entry.summary[0].upper()}{entry.summary[1:]}.",
        "",
        f"- Source: `{entry.package}` {entry.version} from PyPI ({pypi}), {entry.homepage}",
        f"- License: {entry.license} (the package's license file is `LICENSE` in this folder)",
        f"- Wheel: `{wheel_path.name}`, sha256 `{entry.wheel_sha256}`",
        f"- Model: `{entry.module}.{entry.cls}`" + (f", built by `{entry.factory}` from the nested config" if entry.factory else ""),
        "",
        "The code files are the package's own, unmodified; `sha256sum -c upstream.sha256` checks them.",
    ]
    if entry.placeholders:
        lines += ["", "Written empty by the corpus build (not upstream):", ""]
        lines += [f"- `{rel}`: {why}" for rel, why in entry.placeholders.items()]
    lines += [
        "",
        "The weights in `model.safetensors` are not trained: they are the reference model's own",
        f"initialisation under seed {SEED}, with parameters that initialisation leaves constant",
        "(zero-initialised output layers, unit norm scales) given small seeded noise so that every",
        "layer shapes the output.",
        "",
        "## Usage",
        "",
        "```python",
        "import json",
        "from safetensors.torch import load_file",
        build[1],
        "",
        'config = json.load(open("config.json"))',
        build[0],
        'model.load_state_dict(load_file("model.safetensors"))',
        "```",
        "",
        "## Upstream files",
        "",
        "| file | sha256 |",
        "|---|---|",
        *[f"| `{rel}` | `{digest}` |" for rel, digest in upstream],
        "",
    ]
    return "\n".join(lines)


def missing_imports(entry: Entry) -> list[str]:
    return [name for name in entry.requires if importlib.util.find_spec(name) is None]


def make_weights(entry: Entry, dest: Path) -> dict:
    """Build the reference in the sandbox, save its seeded weights into the folder, check them."""
    with tempfile.TemporaryDirectory(prefix=f"corpus-{entry.name}-") as tmp:
        work = Path(tmp)
        shutil.copy(JOB, work / "make_weights.py")
        job = {"folder": str(dest), "module": entry.module, "cls": entry.cls, "factory": entry.factory,
               "inputs": entry.inputs, "seed": SEED, "out": "model.safetensors", "report": "report.json"}
        (work / "job.json").write_text(json.dumps(job))
        res = sandbox.run([sys.executable, "make_weights.py", "job.json"], work, ro_paths=[dest],
                          limits=sandbox.Limits(wall_s=600, memory_mb=8192))
        report_path = work / "report.json"
        if not report_path.exists():
            raise BuildError(f"making weights stopped: {res.one_line_error()}")
        report = json.loads(report_path.read_text())
        if not report["ok"]:
            where = f" at {report['where'][-1]}" if report.get("where") else ""
            raise BuildError(f"weights check failed: {report.get('error') or summary(report)}{where}")
        shutil.move(str(work / "model.safetensors"), dest / "model.safetensors")
    return report


def summary(report: dict) -> str:
    keys = ("output_shape", "finite", "std", "reloaded_max_abs_diff", "reload_missing", "reload_unexpected")
    return ", ".join(f"{k}={report.get(k)}" for k in keys)


def upstream_changed(folder: Path) -> list[str]:
    """Files listed in the folder's upstream.sha256 whose content no longer matches."""
    changed = []
    for line in (folder / "upstream.sha256").read_text().splitlines():
        digest, rel = line.split(maxsplit=1)
        path = folder / rel
        if not path.is_file() or sha256_of(path.read_bytes()) != digest:
            changed.append(rel)
    return changed


def build_key(entry: Entry) -> str:
    """Changes when the entry, the weights job or LAYOUT_VERSION changes: the folder is rebuilt then."""
    parts = [repr(entry), JOB.read_text(), str(LAYOUT_VERSION)]
    return sha256_of("\n".join(parts).encode())


def build(entry: Entry, work: Path = DEFAULT_WORK, force: bool = False) -> dict:
    """Build one entry (or reuse an up-to-date build); returns its record, with `error` on failure."""
    dest = work / "models" / entry.name
    stamp = work / "builds" / f"{entry.name}.json"
    key = build_key(entry)
    if not force and stamp.exists() and (dest / "upstream.sha256").is_file():
        record = json.loads(stamp.read_text())
        if record.get("key") == key and "error" not in record and not upstream_changed(dest):
            return record | {"reused": True}
    stamp.parent.mkdir(parents=True, exist_ok=True)
    record: dict = {"name": entry.name, "key": key, "folder": str(dest)}
    try:
        wheel = fetch_wheel(entry, work)
        record["upstream"] = dict(lay_out(entry, wheel, dest))
        missing = missing_imports(entry)
        if missing:
            raise BuildError(f"missing dependency: {', '.join(missing)} (pip install -r benchmarks/corpus/requirements.txt)")
        record["weights"] = make_weights(entry, dest)
    except BuildError as exc:
        record["error"] = str(exc)
    stamp.write_text(json.dumps(record, indent=1))
    return record


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="entries to build (default: all)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="wheel cache, folders and build records")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    parser.add_argument("--list", action="store_true", help="list the entries and exit")
    args = parser.parse_args()
    if args.list:
        for e in ENTRIES:
            print(f"{e.name:<26} {e.package}=={e.version:<12} {e.license:<11} {e.family}")
        return 0
    unknown = [n for n in args.names if n not in BY_NAME]
    if unknown:
        print(f"error: unknown corpus entry {unknown[0]!r} (known: {', '.join(BY_NAME)})", file=sys.stderr)
        return 2
    failed = 0
    for entry in [BY_NAME[n] for n in args.names] or ENTRIES:
        record = build(entry, args.work.resolve(), args.force)
        if "error" in record:
            failed += 1
            print(f"{entry.name:<26} FAILED  {record['error']}")
        else:
            w = record["weights"]
            state = "up to date" if record.get("reused") else f"built in {w['wall_s']}s"
            print(f"{entry.name:<26} ok      {state}; {w['parameters']:,} parameters, output {w['output_shape']}, "
                  f"{len(w['perturbed'])} constant parameters perturbed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
