"""Run the dynamic compliance suite on a port (runs sandboxed).

    python -m sandbox.jobs.compliance JOB_JSON RESULT_JSON

JOB_JSON: import_root, module, class_name (where the port is), config (its constructor kwargs,
used only without weights), weights_dir (its converted diffusers folder, or null for seeded
random weights), spec (a parity spec: its `inputs(seed)["candidate"]` are the inputs), and
optionally tolerance (max abs; default the spec's, else 1e-5), device ("cpu"), only (check
names to run) and skip ({check name: reason}: reported as skipped with that reason).

The result is rewritten after every check, with "complete": false until the last one, so a
suite stopped by the sandbox still reports what it finished.
"""

import os

# Inductor compiles in this process: no worker pool to outgrow the sandbox's process limit.
os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

import torch  # noqa: E402

from sandbox.compliance.port import Port  # noqa: E402
from sandbox.compliance.registry import BY_NAME, CHECKS  # noqa: E402
from sandbox.compliance.result import error_line, jsonable, skipped  # noqa: E402
from sandbox.loading import load_class, read_json  # noqa: E402
from sandbox.parity.runside.spec import load_spec  # noqa: E402

DEFAULT_TOLERANCE = 1e-5


def _write(path: str, result: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        json.dump(jsonable(result), fh, indent=2)
    os.replace(tmp, path)


def build_port(job: dict) -> Port:
    cls = load_class(job["import_root"], job["module"], job["class_name"])
    spec = load_spec(job["spec"])
    tolerance = job.get("tolerance")
    if tolerance is None:
        tolerance = (getattr(spec, "tolerance", None) or {}).get("max_abs", DEFAULT_TOLERANCE)
    return Port(cls=cls, config=job.get("config") or {}, weights_dir=job.get("weights_dir"), spec=spec,
                tolerance=float(tolerance), device=torch.device(job.get("device") or "cpu"))


def run_checks(port: Port, result: dict, result_file: str, *, only: list[str] | None, skip: dict[str, str]) -> None:
    for module in CHECKS:
        if only is not None and module.NAME not in only:
            continue
        row = {"check": module.NAME, "title": module.TITLE}
        start = time.monotonic()
        if module.NAME in skip:
            outcome = skipped(f"skipped on request: {skip[module.NAME]}", requested=True).to_dict()
        else:
            try:
                outcome = module.check(port).to_dict()
            except Exception as exc:  # the port is untrusted code: what it raised is the evidence
                where = port.where(exc)
                outcome = {"status": "failed",
                           "summary": f"raised {error_line(exc)}" + (f" (at {where})" if where else ""),
                           "evidence": {"error": f"{exc.__class__.__name__}: {str(exc)[:1000]}", "where": where,
                                        "trace": traceback.format_exc(limit=-6)[-3000:]}}
        row.update(outcome, wall_s=round(time.monotonic() - start, 3))
        result["checks"].append(row)
        _write(result_file, result)


def main() -> int:
    job_file, result_file = sys.argv[1:3]
    job = read_json(job_file)
    started = time.monotonic()
    result = {"ok": False, "complete": False, "checks": [], "torch": torch.__version__}
    try:
        import diffusers

        result["diffusers"] = diffusers.__version__
        port = build_port(job)
        result.update(ok=True, tolerance=port.tolerance, device=port.device.type, class_name=port.cls.__name__)
        unknown = sorted(set(job.get("only") or []) - set(BY_NAME)) + sorted(set(job.get("skip") or {}) - set(BY_NAME))
        if unknown:
            raise ValueError(f"unknown compliance checks: {', '.join(unknown)} (known: {', '.join(BY_NAME)})")
        _write(result_file, result)
        run_checks(port, result, result_file, only=job.get("only"), skip=job.get("skip") or {})
    except Exception as exc:
        result.update(ok=False, error=f"{exc.__class__.__name__}: {exc}"[:1000], trace=traceback.format_exc(limit=-6)[-3000:])
    result.update(complete=True, wall_s=round(time.monotonic() - started, 3))
    _write(result_file, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
