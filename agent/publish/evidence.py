"""The evidence a PR branch carries: what was ported from what, and what was measured.

`integrate-evidence.json` sits in the evidence folder of the branch (the repository root of a
standalone port, `.integrate/<module>/` in a diffusers checkout) beside the parity spec, the
weight mapping and the reports. It holds hashes and relative paths only, so a maintainer's clone
can check every claim without the author's machine or run folder (`integrate verify`).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from agent import __version__
from agent.run_state import Run

MANIFEST = "integrate-evidence.json"
FORMAT = 1


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def evidence_dir(run: Run) -> Path:
    """Where the evidence lives in the workspace (the branch)."""
    planned, scaffolded = run.result("plan"), run.result("scaffold")
    workspace = Path(scaffolded["workspace"])
    if planned["layout"] == "standalone":
        return workspace
    return workspace / ".integrate" / planned["module_name"]


def _rel(path: str | Path, root: Path) -> str:
    return Path(path).resolve().relative_to(root.resolve()).as_posix()


def _source(resolved: dict[str, Any]) -> dict[str, Any]:
    if resolved["kind"] == "hub":
        return {"kind": "hub", "id": resolved["origin"], "revision": resolved["revision"]}
    # A local folder: its name only. The hashes below say what was in it.
    return {"kind": "local", "name": Path(resolved["origin"]).name}


def _repo_files(repo_files: dict[str, Any] | None) -> list[str]:
    if not repo_files:
        return []
    listed = [*repo_files.get("dummies", []), repo_files.get("docs_page"), repo_files.get("toctree")]
    return sorted({p for p in listed if p})


def build_manifest(run: Run, *, weight_files: list[Path], spec_inputs: dict[str, Any]) -> dict[str, Any]:
    resolved, analysis, planned, scaffolded, converted, verified = (
        run.result(s) for s in ("resolve", "analyze", "plan", "scaffold", "convert", "verify")
    )
    workspace = Path(scaffolded["workspace"])
    snapshot = Path(resolved["snapshot"])
    weights_dir = Path(converted["weights_dir"])
    parity = verified["parity"]
    return {
        "format": FORMAT,
        "tool": {"name": "integrate", "version": __version__},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": _source(resolved),
        "reference": {
            "class": analysis["top_class"]["name"],
            "module": analysis["top_class"]["module"],
            "files": {rel: sha256_file(snapshot / rel) for rel in sorted({*resolved["code_files"], resolved["config_file"]})},
            "weights": {entry["file"]: sha256_file(path) for entry, path in zip(resolved["weights"], weight_files, strict=True)},
        },
        "port": {
            "class": planned["class_name"],
            "module": planned["module_name"],
            "layout": planned["layout"],
            # the model file first (integrate verify checks it); then the model folder's other files, the test
            "files": {_rel(p, workspace): sha256_file(Path(p))
                      for p in (scaffolded["model_file"], *scaffolded.get("package_files", []), verified["test_file"])},
            # --target: the dummies, docs page and table of contents the branch changed for diffusers
            "repo_files": {rel: sha256_file(workspace / rel) for rel in _repo_files(scaffolded.get("repo_files"))},
        },
        "converted": {
            "files": {p.name: sha256_file(p) for p in sorted(weights_dir.iterdir()) if p.is_file()},
            "mapping": {"path": _rel(converted["mapping_file"], workspace), "sha256": sha256_file(Path(converted["mapping_file"]))},
        },
        "parity": {
            "spec": {"path": _rel(verified["spec"], workspace), "sha256": sha256_file(Path(verified["spec"])), "made_from": spec_inputs},
            "passed": parity["passed"],
            "seeds": parity["seeds"],
            "dtype": parity["dtype"],
            "device": parity["device"],
            "tolerance": parity["tolerance"],
            "max_abs_diff": parity["max_abs_diff"],
            "cosine": parity["cosine"],
            "outputs": len(parity["outputs"]),
        },
        "generated_test": {"path": _rel(verified["test_file"], workspace), "passed": verified["generated_test"]["passed"]},
        "checks": {"findings": len(verified["findings"]), "rules": sorted({f["rule"] for f in verified["findings"]})},
        "compliance": {c["check"]: c["status"] for c in verified["compliance"]["checks"]},
        "reports": sorted(_rel(p, workspace) for p in Path(verified["reports"]).iterdir() if p.is_file()),
    }


def write_manifest(run: Run, manifest: dict[str, Any]) -> Path:
    path = evidence_dir(run) / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path
