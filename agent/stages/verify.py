"""verify: parity of the reference against the port built from the converted weights and against
the copy reloaded from its saved folder (each side sandboxed, the verdict outside both), the
convention checks, and the generated test, run in a fresh sandboxed process that imports only
the port and its weights. The run cannot pass when any of them fails."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import sandbox
from agent.checks import blocking, check_port
from agent.compliance import run_compliance
from agent.diffusers_repo.branch import write_and_run_model_test
from agent.errors import IntegrateError, ParityFailed
from agent.layouts import model_code_files
from agent.parity_run import (
    candidate_config,
    forward_renames,
    parity_paths,
    render_spec,
    run_parity_sandboxed,
    spec_context,
)
from agent.publish.evidence import evidence_dir
from agent.publish.usage import usage_example
from agent.render import render
from agent.run_state import Run
from sandbox import safe_files
from sandbox.mapping import WeightMapping
from sandbox.parity.exchange import load_tensors, read_result

SAMPLE_VALUES = 32
COMPILE_SKIPPED = "not requested (--compile-check); about 30 s of CPU on the bundled example"


def reports_dir(run: Run) -> Path:
    return evidence_dir(run) / "reports"


def spec_path(run: Run) -> Path:
    return evidence_dir(run) / "parity_spec.py"


def reference_samples(sides: Path, n: int = SAMPLE_VALUES) -> list[dict[str, Any]]:
    """Shape and `n` values at a fixed stride of each reference output tensor of the first seed."""
    ref_dir = sides / "reference"
    keys = [k for _, k, _ in read_result(ref_dir)["outputs"][0] if k]
    tensors = load_tensors(ref_dir, "outputs.safetensors", keys)
    out = []
    for k in keys:
        flat = tensors[k].detach().float().flatten()
        stride = max(1, flat.numel() // n)
        out.append({"shape": list(tensors[k].shape), "stride": stride, "values": [float(v) for v in flat[::stride][:n]]})
    return out


def run_generated_test(test_file: Path, import_root: Path, scratch: Path, ro_paths: list[Path]) -> dict[str, Any]:
    """The generated test as a user would run it: its own process, nothing of ours imported."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    res = sandbox.run([sys.executable, str(test_file)], scratch, ro_paths=ro_paths, env={"PYTHONPATH": str(import_root)})
    return {"passed": res.ok, "reason": res.reason, "output": (res.stdout + res.stderr)[-4000:], "wall_s": res.wall_s}


def _link_or_copy(src: str, dst: str) -> None:
    """A hard link where the file system allows one: a checkpoint is not copied a second time."""
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def run_usage_example(code: str, import_root: Path, weights_dir: Path, scratch: Path) -> dict[str, Any]:
    """A --target branch's usage example, run as shown: from a folder beside a copy of the
    converted weights named as the example names them (`../converted`), importing the branch's
    diffusers, in the sandbox."""
    if scratch.exists():
        shutil.rmtree(scratch)
    (scratch / "work").mkdir(parents=True)
    shutil.copytree(weights_dir, scratch / "converted", symlinks=True, copy_function=_link_or_copy)
    (scratch / "work" / "usage_example.py").write_text(code)
    res = sandbox.run([sys.executable, "usage_example.py"], scratch / "work", ro_paths=[import_root, scratch / "converted"],
                      env={"PYTHONPATH": str(import_root)})
    return {"passed": res.ok, "reason": res.reason, "output": (res.stdout + res.stderr)[-2000:]}


def verify(run: Run) -> dict[str, Any]:
    analysis, planned, scaffolded, converted = (run.result(s) for s in ("analyze", "plan", "scaffold", "convert"))
    workspace = Path(scaffolded["workspace"])
    reports = reports_dir(run)
    if reports.exists():
        shutil.rmtree(reports)
    reports.mkdir(parents=True)
    spec = spec_path(run)
    context = spec_context(run, spec.name, reference_weights=converted["reference_files"], converted_dir=converted["weights_dir"])
    safe_files.write_text(spec.parent, spec.name, render_spec(context))
    try:
        mapping = WeightMapping.from_json(safe_files.read_json(run.dir, Path(converted["mapping_json"]).relative_to(run.dir)))
    except (OSError, ValueError) as exc:
        raise IntegrateError(f"verify: the converted weights' mapping is unreadable ({exc}); run the convert stage again") from None
    work = run.path("verify", "parity")
    paths = parity_paths(run, converted["reference_files"], converted["weights_dir"])
    report = run_parity_sandboxed(spec, work, paths, device=run.inputs.get("device", "cpu"), mapping=mapping)
    for name in ("parity.json", "parity_layers.png"):
        safe_files.copy_out(work, name, reports / name)

    # every rule, the tamper rules included, on the model file (and the rest of its model folder)
    checked = check_port(model_code_files(workspace, scaffolded["model_file"]))
    tampering = blocking(checked)
    findings = [f.to_dict() for f in checked]
    for f in findings:
        f["path"] = str(Path(f["path"]).relative_to(workspace))
    safe_files.write_text(reports, "checks.json", json.dumps(findings, indent=2) + "\n")

    test_file = workspace / planned["test_path"]
    test_file.parent.mkdir(parents=True, exist_ok=True)
    # the data both forms of the generated test are rendered from
    # (under the port's argument names when the conventions stage renamed them)
    renamed = forward_renames(run)
    test_config, samples = candidate_config(run), reference_samples(work / "sides")
    test_inputs = [{**i, "name": renamed.get(i["name"], i["name"])} if "name" in i else {**i, "renames": renamed}
                   for i in analysis["inputs"]]  # an inputs file keeps the reference's names: its keys are renamed as it runs
    if planned["layout"] == "diffusers-tree":  # diffusers' own form: tester mixins + the parity test
        generated_test = write_and_run_model_test(
            run, test_file, config=test_config, inputs=test_inputs, reference_outputs=samples, seed=report["seed"],
            atol=planned["tolerance"]["max_abs"], parity_command=f"integrate parity {spec.name}",
            checkpoint_dir=Path(converted["weights_dir"]),
        )
    usage = usage_example(planned["class_name"], planned["module_name"], planned["layout"], test_inputs,
                          "weights" if planned["layout"] == "standalone" else "../converted", report["seed"])
    if planned["layout"] != "diffusers-tree":
        safe_files.write_text(test_file.parent, test_file.name, render(
            "tests/test_model.py.j2",
            class_name=planned["class_name"],
            module_name=planned["module_name"],
            layout=planned["layout"],
            test_name=test_file.name,
            config_kwargs=repr(test_config),
            reference_outputs=repr(samples),
            sample_size=SAMPLE_VALUES,
            atol=planned["tolerance"]["max_abs"],
            inputs=test_inputs,
            seed=report["seed"],
            parity_command=f"integrate parity {spec.name}",
            usage=usage,
        ))
        generated_test = run_generated_test(test_file, workspace, run.path("verify", "test"), [workspace, Path(converted["weights_dir"])])

    usage_result: dict[str, Any] = {"code": usage, "run_by": None, "passed": None}
    if usage and planned["layout"] == "standalone":
        usage_result.update(run_by="test_usage_example_runs", passed=generated_test["passed"])
    elif usage:
        ran = run_usage_example(usage, workspace / "src", Path(converted["weights_dir"]), run.path("verify", "usage"))
        usage_result.update(run_by="verify", passed=ran["passed"], output=ran["output"])

    compliance = run_compliance(run, skip=None if run.inputs.get("compile_check") else {"torch_compile": COMPILE_SKIPPED})

    components = [
        {"component": "transformer (converted weights)", **{k: report[k] for k in ("max_abs_diff", "mean_abs_diff", "cosine")}, "passed": report["passed"] and not any("saved folder" in p for p in report["problems"])},
    ]
    if report.get("saved"):
        s = report["saved"]
        components.append({"component": "transformer (reloaded with from_pretrained)", "max_abs_diff": s["max_abs_diff"], "mean_abs_diff": s.get("mean_abs_diff"), "cosine": s["cosine"], "passed": s["passed"]})
    result = {
        "parity": {k: report[k] for k in ("passed", "max_abs_diff", "mean_abs_diff", "cosine", "psnr", "tolerance", "dtype", "device", "first_divergence", "problems", "seeds", "outputs")},
        "components": components,
        "isolation": report["sandbox"]["isolation"],
        "isolation_notes": report["sandbox"]["notes"],
        "findings": findings,
        "blocking": [f.to_dict() for f in tampering],
        "generated_test": generated_test,
        # the PR's usage example, run as shown: by the generated test (standalone), or on its own (--target)
        "usage": usage_result,
        "compliance": compliance,
        "reports": str(reports),
        "spec": str(spec),
        "spec_context": context,
        "test_file": str(test_file),
    }
    run.write_json("verify/summary.json", result)
    failures = []  # every reason the run cannot pass, not only the first
    if not report["passed"]:
        fd = report.get("first_divergence") or {}
        where = f"; first divergence at {fd['reference_module']}" if fd else ""
        failures.append(f"parity failed: {'; '.join(report['problems'])}{where}")
    if tampering:
        first = tampering[0]
        failures.append(
            f"the port does what a model file must not ({len(tampering)} blocking finding{'s' if len(tampering) != 1 else ''}): "
            f"{first.rule} at {Path(first.path).relative_to(workspace)}:{first.line}: {first.message}"
        )
    if not generated_test["passed"]:
        last = next((line for line in reversed(generated_test["output"].splitlines()) if line.strip()), generated_test.get("reason", ""))
        failures.append(f"the generated test {test_file.name} failed in a fresh process: {last}")
    if failures:
        raise ParityFailed("; ".join(failures))
    return result
