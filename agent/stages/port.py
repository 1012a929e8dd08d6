"""port: the structural port. The reference code moves into the diffusers model file with its
numerics untouched, parity is measured against the reference, and the result is committed
only when parity passes. The refine stage (the LLM loop) starts from this commit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import libcst as cst

from agent.checks import check_paths
from agent.errors import IntegrateError, ParityFailed
from agent.gitsafe import Git
from agent.parity_run import parity_paths, run_parity_sandboxed, write_spec
from agent.porting import config_dataclasses
from agent.porting.codemods import CallEvidence, CodemodResult, drop_unused_imports, port_codemods
from agent.porting.config_capture import capture_config
from agent.porting.dependencies import port_dependencies
from agent.porting.formatting import format_file
from agent.porting.inline import InlineError, inline_local_imports, kept_lines
from agent.porting.license import strip_license_header
from agent.porting.names import UnresolvedName, check_port_names
from agent.reference_weights import reference_weight_files
from agent.run_state import Run
from agent.stages.scaffold import model_file
from agent.workspace import commit_all

STANDALONE_DISPATCH = "from diffusers.models.attention_dispatch import dispatch_attention_fn\n"
IN_TREE_DISPATCH = "from ..attention_dispatch import dispatch_attention_fn\n"


def _codemods_per_file(snapshot: Path, code_files: list[str], dispatch_import: str, call_sites: dict | None) -> dict[str, CodemodResult]:
    """Codemods on each reference file, so reported lines point into the reference; with the
    probe's record, only calls the parity inputs execute are rewritten."""
    out = {}
    for rel in code_files:
        evidence = CallEvidence.for_file(call_sites, rel) if call_sites is not None else None
        try:
            out[rel] = port_codemods((snapshot / rel).read_text(), dispatch_import, evidence)
        except cst.ParserSyntaxError:
            continue  # left as it is; analyze already parsed what the model needs
    return out


def port(run: Run) -> dict[str, Any]:
    resolved, analysis, planned, scaffolded = (run.result(s) for s in ("resolve", "analyze", "plan", "scaffold"))
    snapshot = Path(resolved["snapshot"])
    in_tree = planned["layout"] == "diffusers-tree"
    code_files = analysis.get("code_files", resolved["code_files"])
    call_sites = json.loads(run.path(analysis["call_sites"]).read_text()) if analysis.get("call_sites") else None
    # absolute while the reference's own imports are followed; made relative for the diffusers tree below
    mods = _codemods_per_file(snapshot, code_files, STANDALONE_DISPATCH, call_sites)
    entry = analysis["top_class"]["file"]
    try:
        sources = {f: m.code for f, m in mods.items()}
        dataclasses = analysis.get("config_dataclasses")
        if dataclasses:
            sources[entry] = sources.get(entry, (snapshot / entry).read_text()) + config_dataclasses.entry_addition(dataclasses)
        inlined = inline_local_imports(snapshot, entry, code_files, sources, top=planned["reference_class"],
                                       also=config_dataclasses.roots() if dataclasses else ())
    except InlineError as exc:
        raise IntegrateError(f"structural port stopped at {exc}") from None
    code = inlined.code.replace(STANDALONE_DISPATCH, IN_TREE_DISPATCH) if in_tree else inlined.code
    merged, dropped = drop_unused_imports(cst.parse_module(code))
    spans = {f: kept_lines((snapshot / f).read_text(), names) for f, names in inlined.kept.items()}
    try:
        undefined_in_reference = check_port_names(merged.code, snapshot, spans)
    except UnresolvedName as exc:
        raise IntegrateError(f"structural port stopped at {exc}") from None

    def in_port(f: str, line: int) -> bool:  # reported items only for code that is in the port
        return any(a <= line <= b for a, b in spans.get(f, []))

    used_files = set(spans)
    try:
        body, renamed_attributes = capture_config(
            merged.code, planned["reference_class"], planned["class_name"], in_tree=in_tree,
            tuple_args={a["name"] for a in analysis["init_args"] if a.get("default_is_tuple")} | set(analysis.get("tuple_args", [])),
            config_object=analysis.get("config_object"),
            defaults=analysis["config_kwargs"],
            module_bases={c["name"] for c in analysis["module_classes"]},
            passthrough=analysis.get("config_passthrough"),
            init_lines=config_dataclasses.init_lines(dataclasses["arguments"]) if dataclasses else (),
            renames=analysis.get("port_renames"),
        )
    except ValueError as exc:
        raise IntegrateError(f"structural port failed: {exc}") from None
    model_path = Path(scaffolded["model_file"])
    model_path.write_text(model_file(run, body=strip_license_header(body)))
    formatting = format_file(model_path)
    local_packages = {Path(f).parts[0].removesuffix(".py") for f in code_files}
    dependencies = port_dependencies(model_path.read_text(), local_packages)

    workdir = run.path("port")
    workdir.mkdir(exist_ok=True)
    weights = [str(p) for p in reference_weight_files(run)]  # the author's weights, when they ship
    spec = write_spec(run, workdir / "spec" / "parity_spec.py", reference_weights=weights)
    report = run_parity_sandboxed(
        spec, workdir / "parity", parity_paths(run, weights), device=run.inputs.get("device", "cpu")
    )
    if not report["passed"]:
        fd = report.get("first_divergence") or {}
        where = f"; first divergence at {fd['reference_module']}" if fd else ""
        raise ParityFailed(f"structural port does not match the reference: {'; '.join(report['problems'])}{where}")

    sha = commit_all(Git.for_workspace(Path(scaffolded["workspace"])), f"Port {planned['reference_class']} as {planned['class_name']} (structural, numerics untouched)")
    left = [f.to_dict() for f in check_paths([model_path], use_cache=False)]
    return {
        "model_file": str(model_path),
        "commit": sha,
        "parity": {k: report[k] for k in ("passed", "max_abs_diff", "mean_abs_diff", "cosine")},
        "parity_report": str(workdir / "parity" / "parity.json"),
        "reference_weights": "shipped" if weights else "random (none ship)",
        "formatting": formatting,
        "dependencies": dependencies,
        "config_flattened": _config_flattened(analysis),
        "undefined_in_reference": undefined_in_reference,
        "codemods": {
            "inlined": inlined.inlined,
            "renamed": inlined.renamed,
            "pruned": inlined.pruned,
            "dropped_statements": inlined.dropped_statements,
            "renamed_attributes": renamed_attributes,
            "config_object": analysis.get("config_object"),
            "converted": [{**c, "file": f} for f in sorted(used_files) if f in mods for c in mods[f].converted if in_port(f, c["line"])],
            "left": [{**item.to_dict(), "file": entry} for item in inlined.left]
            + [{**item.to_dict(), "file": f} for f in sorted(used_files) if f in mods for item in mods[f].left if in_port(f, item.line)]
            + [{"file": u["file"], "line": u["line"], "what": u["name"], "reason": "the reference module does not define it either: kept as it is"}
               for u in undefined_in_reference or []],
            "dropped_imports": sorted({*dropped, *(n for f in used_files if f in mods for n in mods[f].dropped_imports)}),
        },
        "left_for_refinement": left,
        "isolation": report["sandbox"]["isolation"],
    }


def _config_flattened(analysis: dict[str, Any]) -> dict | None:
    """How the reference's configuration became the port's named constructor arguments."""
    if analysis.get("factory"):
        dataclasses = analysis.get("config_dataclasses")
        return {"how": "factory", **analysis["factory"], **({"dataclasses": dataclasses} if dataclasses else {})}
    if analysis.get("config_object"):
        obj = analysis["config_object"]
        return {"how": "config object", "param": obj["param"], "kind": obj["kind"], "arguments": obj["keys"]}
    if analysis.get("config_passthrough"):
        p = analysis["config_passthrough"]
        return {"how": "**kwargs", "param": p["param"], "arguments": p["keys"]}
    return None
