"""`integrate verify`: every claim of a branch's evidence, measured again.

The branch is untrusted (a PR): its manifest is read as data and checked field by field, its
parity spec is never run (the spec is rendered again from the manifest's data and compared with
the branch's copy), and everything that executes its code (conversion, parity sides, the
generated test) runs in the sandbox. Each claim becomes a row: what the branch says, what was
measured now, and whether they agree. Nothing can agree by default: a claim that could not be
measured does not agree.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sandbox
from agent.errors import IntegrateError
from agent.input_recipe import InputsError, check_inputs
from agent.layouts import model_code_files
from agent.publish.evidence import FORMAT, MANIFEST, sha256_file
from sandbox import safe_files

MAX_MANIFEST_BYTES = 1 << 20
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
REVISION = re.compile(r"^[0-9a-f]{40}$")


@dataclass
class Claim:
    claim: str
    recorded: str
    measured: str
    agrees: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ManifestError(IntegrateError):
    """The manifest is not one integrate wrote (or was edited out of shape)."""


# -- reading a manifest from an untrusted branch --------------------------------------------------

def _relpath(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or value.startswith("/") or "\x00" in value or ".." in Path(value).parts:
        raise ManifestError(f"manifest: {what} is not a relative path inside the branch: {value!r}")
    return value


def _hashes(table: Any, what: str) -> dict[str, str]:
    if not isinstance(table, dict) or not all(isinstance(v, str) and SHA256.match(v) for v in table.values()):
        raise ManifestError(f"manifest: {what} must map file names to sha256 digests")
    return {_relpath(k, what): v for k, v in table.items()}


def _check_spec_context(ctx: Any) -> dict[str, Any]:
    """The data the spec is rendered from: names must be names, nothing may smuggle code."""
    if not isinstance(ctx, dict):
        raise ManifestError("manifest: parity.spec.made_from is missing")
    for key in ("class_name", "reference_class"):
        if not isinstance(ctx.get(key), str) or not IDENTIFIER.match(ctx[key]):
            raise ManifestError(f"manifest: {key} is not a Python identifier")
    for key in ("reference_module", "candidate_module"):
        if not isinstance(ctx.get(key), str) or not DOTTED.match(ctx[key]):
            raise ManifestError(f"manifest: {key} is not a dotted module name")
    if not isinstance(ctx.get("spec_name"), str) or not re.match(r"^[\w.-]+\.py$", ctx["spec_name"]):
        raise ManifestError("manifest: spec_name is not a file name")
    for name in ctx.get("reference_weight_files", []):
        _relpath(name, "reference_weight_files")
    obj = ctx.get("config_object")
    if obj is not None and not (isinstance(obj, dict) and obj.get("kind") in ("mapping", "namespace") and IDENTIFIER.match(str(obj.get("param", "")))):
        raise ManifestError("manifest: config_object is malformed")
    classes = ctx.get("config_dataclasses")
    if classes is not None and not (isinstance(classes, dict) and all(
            isinstance(k, str) and IDENTIFIER.match(k) and isinstance(v, str) and DOTTED.match(v) for k, v in classes.items())):
        raise ManifestError("manifest: config_dataclasses is malformed")
    tol = ctx.get("tolerance")
    if not (isinstance(tol, dict) and all(isinstance(tol.get(k), (int, float)) for k in ("max_abs", "cosine"))):
        raise ManifestError("manifest: tolerance is malformed")
    if not isinstance(ctx.get("config"), dict) or not isinstance(ctx.get("inputs"), list):
        raise ManifestError("manifest: config or inputs is malformed")
    try:
        ctx["inputs"] = check_inputs(ctx["inputs"])  # rendered into the spec: plain checked data only
    except InputsError as exc:
        raise ManifestError(f"manifest: inputs: {exc}") from None
    json.dumps(ctx)  # plain data only
    return ctx


def read_manifest(root: Path, rel: str) -> dict[str, Any]:
    try:
        data = safe_files.read_json(root, rel, max_bytes=MAX_MANIFEST_BYTES)
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{rel}: unreadable manifest ({exc})") from None
    try:
        if data.get("format") != FORMAT:
            raise ManifestError(f"{rel}: manifest format {data.get('format')!r}, this integrate reads {FORMAT}")
        source = data["source"]
        if source["kind"] == "hub":
            if not (HUB_ID.match(source["id"]) and REVISION.match(source["revision"])):
                raise ManifestError(f"{rel}: source is not a Hub id with a commit revision")
        elif source["kind"] != "local":
            raise ManifestError(f"{rel}: unknown source kind")
        _hashes(data["reference"]["files"], "reference.files")
        _hashes(data["reference"]["weights"], "reference.weights")
        _hashes(data["port"]["files"], "port.files")
        _hashes(data["converted"]["files"], "converted.files")
        _relpath(data["converted"]["mapping"]["path"], "converted.mapping.path")
        _relpath(data["parity"]["spec"]["path"], "parity.spec.path")
        _check_spec_context(data["parity"]["spec"]["made_from"])
        _relpath(data["generated_test"]["path"], "generated_test.path")
        if not DOTTED.match(data["port"]["module"]) or data["port"]["layout"] not in ("standalone", "diffusers-tree"):
            raise ManifestError(f"{rel}: port module or layout is malformed")
    except (KeyError, TypeError, AttributeError) as exc:
        raise ManifestError(f"{rel}: manifest is missing {exc}") from None
    return data


def find_manifests(root: Path) -> list[str]:
    found = [MANIFEST] if (root / MANIFEST).is_file() else []
    found += sorted(str(p.relative_to(root)) for p in (root / ".integrate").glob(f"*/{MANIFEST}")) if (root / ".integrate").is_dir() else []
    if not found:
        raise IntegrateError(f"no {MANIFEST} in {root} (nor in .integrate/*/): not a branch integrate published")
    return found


# -- measuring again ----------------------------------------------------------------------------

def _file_claims(root: Path, table: dict[str, str], what: str) -> list[Claim]:
    rows = []
    for rel, recorded in table.items():
        try:
            with safe_files.open_regular(root, rel, max_bytes=None) as fd:
                measured = sha256_file(Path(safe_files.proc_path(fd)))
        except OSError as exc:
            rows.append(Claim(f"{what} {rel}", recorded[:12], f"unreadable: {exc}", False))
            continue
        rows.append(Claim(f"{what} {rel}", recorded[:12], measured[:12], measured == recorded))
    return rows


def fetch_reference(manifest: dict[str, Any], dest: Path, local: Path | None) -> Path:
    """The reference as the manifest names it: the Hub repo at its recorded commit, or the
    local folder the maintainer was given (`--reference`)."""
    source = manifest["source"]
    if source["kind"] == "local":
        if local is None:
            raise IntegrateError(f"the reference was a local folder ({source.get('name')!r}); pass it with --reference PATH")
        return local.resolve()
    import os

    from huggingface_hub import snapshot_download

    wanted = [*manifest["reference"]["files"], *manifest["reference"]["weights"]]
    try:
        snapshot_download(source["id"], revision=source["revision"], local_dir=dest, allow_patterns=wanted, token=os.environ.get("HF_TOKEN") or None)
    except Exception as exc:  # every failure of the Hub client becomes one line
        raise IntegrateError(f"cannot fetch the reference {source['id']}@{source['revision'][:12]}: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    return dest


def _close(recorded: Any, measured: float, tol: float) -> bool:
    try:
        return abs(float(recorded) - measured) <= max(tol, 1e-12) or (math.isinf(float(recorded)) and math.isinf(measured))
    except (TypeError, ValueError):
        return False


def verify_manifest(root: Path, rel: str, *, reference: Path | None, device: str, work: Path,
                    findings_out: list[dict[str, Any]] | None = None) -> list[Claim]:
    from agent.checks import blocking, check_port
    from agent.conversion import convert_checkpoints
    from agent.parity_run import SidePaths, render_spec, run_parity_sandboxed

    manifest = read_manifest(root, rel)
    evidence = (root / rel).parent
    rows: list[Claim] = []
    rows += _file_claims(root, manifest["port"]["files"], "port file unchanged:")
    rows += _file_claims(root, _hashes(manifest["port"].get("repo_files", {}), "port.repo_files"), "diffusers file unchanged:")
    mapping_rel = manifest["converted"]["mapping"]["path"]
    rows += _file_claims(root, {mapping_rel: manifest["converted"]["mapping"]["sha256"]}, "weight mapping unchanged:")

    standalone = manifest["port"]["layout"] == "standalone"
    if standalone and (root / "weights").is_dir():  # converted weights beside the port (not committed, but present)
        rows += _file_claims(root / "weights", manifest["converted"]["files"], "converted weights in the folder:")

    context = manifest["parity"]["spec"]["made_from"]
    spec_text = render_spec(context)
    spec_rel = manifest["parity"]["spec"]["path"]
    try:
        branch_spec = safe_files.read_text(root, spec_rel, max_bytes=4 << 20)
    except OSError as exc:
        branch_spec = f"unreadable: {exc}"
    rows.append(Claim(f"parity spec {spec_rel} is integrate's own, made from the manifest", "yes",
                      "yes" if branch_spec == spec_text else "differs", branch_spec == spec_text))
    rows.append(_tolerance_claim(context["tolerance"], manifest["parity"]["dtype"]))

    ref_dir = fetch_reference(manifest, work / "reference", reference)
    rows += _file_claims(ref_dir, manifest["reference"]["files"], "reference file:")
    if context["inputs"] and context["inputs"][0]["kind"] == "file":
        rows.append(_inputs_file_claim(context["inputs"][0], ref_dir))
    rows += _file_claims(ref_dir, manifest["reference"]["weights"], "reference weights:")

    converted = work / "converted"
    weights = [ref_dir / name for name in manifest["reference"]["weights"]]
    config = evidence / "diffusers_config.json"
    try:
        convert_checkpoints(weights, converted, mapping=root / mapping_rel, config=config if config.is_file() else None)
        rows += _file_claims(converted, manifest["converted"]["files"], "converted weights reproduce:")
    except IntegrateError as exc:
        rows.append(Claim("converted weights reproduce", f"{len(manifest['converted']['files'])} files", exc.message, False))
        return rows

    import_root = root if standalone else root / "src"
    spec_dir = work / "spec"
    spec_dir.mkdir()
    (spec_dir / context["spec_name"]).write_text(spec_text)
    recorded = manifest["parity"]
    try:
        report = run_parity_sandboxed(
            spec_dir / context["spec_name"], work / "parity",
            SidePaths(reference=[ref_dir], candidate=[import_root, converted]), device=device, dtype=recorded["dtype"],
            seed=int(recorded["seeds"][0]) if recorded["seeds"] else 0,
        )
        measured = f"{'passed' if report['passed'] else 'FAILED'}, max abs {report['max_abs_diff']:.3g} (seeds {', '.join(map(str, report['seeds']))})"
        agrees = bool(report["passed"]) and bool(recorded["passed"]) and _close(recorded["max_abs_diff"], float(report["max_abs_diff"]), recorded["tolerance"]["max_abs"])
    except IntegrateError as exc:
        measured, agrees = exc.message, False
    rows.append(Claim("parity: reference vs port (converted and reloaded), every output", f"{'passed' if recorded['passed'] else 'failed'}, max abs {recorded['max_abs_diff']}", measured, agrees))

    test_rel = manifest["generated_test"]["path"]
    rows.append(_generated_test(root, test_rel, converted, standalone, work, manifest["generated_test"]["passed"]))

    model_file = next(p for p in manifest["port"]["files"] if not Path(p).name.startswith("test_"))
    # the files on disk, not the manifest's list: a model folder's every Python file is read
    code = model_code_files(root, model_file)
    checked = model_file if len(code) == 1 else f"{model_file} and its folder's {len(code) - 1} other files"
    findings = check_port(code)
    tampering = blocking(findings)
    rows.append(Claim(f"no blocking finding (tampering, unparsable file) in {checked}", "0", str(len(tampering)), not tampering))
    if findings_out is not None:
        findings_out += [{**f.to_dict(), "path": Path(f.path).relative_to(root).as_posix()} for f in findings]
    rows.append(Claim(f"convention findings on {checked}", str(manifest["checks"]["findings"]), str(len(findings)),
                      len(findings) == manifest["checks"]["findings"]))
    return rows


def _inputs_file_claim(entry: dict[str, Any], ref_dir: Path) -> Claim:
    """An inputs file runs on the reference side, so a branch's own could bend the reference's
    numbers: it is accepted only when it is the reference's own integrate_inputs.py, byte for byte
    as the spec embeds it."""
    from agent.stages.analyze import INPUTS_FILE, embeddable_inputs_source

    claim = f"inputs file is the reference's own {INPUTS_FILE}"
    try:
        own = embeddable_inputs_source(safe_files.read_text(ref_dir, INPUTS_FILE, max_bytes=1 << 20), INPUTS_FILE)
    except (OSError, IntegrateError) as exc:
        return Claim(claim, entry.get("origin", "?"), f"the reference has no usable {INPUTS_FILE}: {exc}", False)
    same = own == entry["source"]
    return Claim(claim, entry.get("origin", "?"), "identical" if same else "differs (an inputs file from outside the reference)", same)


def _tolerance_claim(tolerance: dict[str, float], dtype: str) -> Claim:
    """A branch may tighten the tolerance, never loosen it past integrate's preset for its dtype."""
    from sandbox.parity.presets import PRESETS

    preset = PRESETS.get(dtype)
    ok = preset is not None and tolerance["max_abs"] <= preset["max_abs"] and tolerance["cosine"] >= preset["cosine"]
    limit = f"max abs <= {preset['max_abs']}, cosine >= {preset['cosine']}" if preset else f"no preset for {dtype!r}"
    return Claim(f"parity tolerance no looser than the {dtype} preset", limit,
                 f"max abs {tolerance['max_abs']}, cosine {tolerance['cosine']}", ok)


def _generated_test(root: Path, test_rel: str, converted: Path, standalone: bool, work: Path, recorded: bool) -> Claim:
    """The generated test in a copy of the branch, in a fresh sandboxed process: a standalone
    test as a script with the converted weights where it looks for them; a diffusers-form test
    under pytest with the checkout's own conftest, pointed at the converted weights."""
    tree = work / "tree"
    shutil.copytree(root, tree, symlinks=True, ignore=shutil.ignore_patterns(".git", "weights", "__pycache__"))
    claim = f"generated test {test_rel} passes in a fresh process"
    if not standalone:
        from agent.diffusers_repo.model_test import run_diffusers_test

        result = run_diffusers_test(tree / test_rel, tree, converted, work / "test")
        failed = ", ".join(result.get("failed") or []) or result.get("reason", "")
        measured = "passed" if result["passed"] else f"FAILED: {failed[:120]}"
        return Claim(claim, "passed" if recorded else "failed", measured, bool(result["passed"]) and recorded)
    shutil.copytree(converted, tree / Path(test_rel).parent / "weights")
    scratch = work / "test"
    scratch.mkdir()
    res = sandbox.run([sys.executable, str(tree / test_rel)], scratch, ro_paths=[tree], env={"PYTHONPATH": str(tree)})
    last = next((line for line in reversed((res.stdout + res.stderr).splitlines()) if line.strip()), res.reason)
    return Claim(claim, "passed" if recorded else "failed", "passed" if res.ok else f"FAILED: {last[:120]}", res.ok and recorded)


def verify_folder(root: Path, *, reference: Path | None = None, device: str = "cpu", keep: Path | None = None,
                  findings_out: list[dict[str, Any]] | None = None) -> list[Claim]:
    root = root.resolve()
    if not root.is_dir():
        raise IntegrateError(f"not a folder: {root}")
    rows: list[Claim] = []
    for rel in find_manifests(root):
        with tempfile.TemporaryDirectory(prefix="integrate-verify-") as tmp:
            work = keep or Path(tmp)
            work.mkdir(parents=True, exist_ok=True)
            try:
                rows += verify_manifest(root, rel, reference=reference, device=device, work=work, findings_out=findings_out)
            except ManifestError as exc:
                rows.append(Claim(f"{rel} is a manifest integrate wrote", "yes", exc.message, False))
    return rows


# -- pull requests --------------------------------------------------------------------------------

def checkout_pull(repo: str, number: int, dest: Path):
    """The pull request's head commit checked out in `dest` (a new repository): fetched from the
    head repository with the token in git's environment only. Returns (client, pull info)."""
    import git

    from agent.publish.github import GitHubClient
    from agent.publish.push import checkout, fetch_ref

    client = GitHubClient.from_env(repo=repo)
    pull = client.get_pull(repo, number)
    git.Repo.init(dest)  # fresh: no hooks, no filters, nothing of the branch's own configuration
    fetch_ref(dest, pull.head_clone_url, pull.head_ref, client.token(), "refs/heads/integrate-verify")
    checkout(dest, "integrate-verify")
    return client, pull


def review_summary(rows: list[Claim]) -> str:
    agreed = sum(r.agrees for r in rows)
    lines = [
        f"**integrate verify**: {agreed}/{len(rows)} claims reproduce"
        + (" - every claim of this branch was measured again and agrees." if agreed == len(rows) else "."),
        "",
        "| claim | recorded | re-measured | agrees |",
        "|---|---|---|---|",
        *(f"| {r.claim} | {r.recorded} | {r.measured} | {'yes' if r.agrees else '**no**'} |" for r in rows),
    ]
    return "\n".join(lines)


def post_review(client, repo: str, number: int, rows: list[Claim], findings: list[dict[str, Any]]):
    """The result as the tool's one review on the pull request (updated on a re-run): the claims
    table, and a line comment per convention finding on a line the pull request changed."""
    from agent.publish.github import LineComment

    comments = [LineComment(f["path"], int(f["line"]), f"**{f['rule']}**: {f['message']}", f["rule"]) for f in findings if f.get("line")]
    return client.post_review(repo, number, review_summary(rows), comments)
