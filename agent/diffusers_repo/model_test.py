"""The generated model test in a diffusers checkout, written the way diffusers writes its own.

diffusers' model tests live under `tests/models/<family>/test_models_<module>.py` and get their
common checks (save/load, determinism, output shape, return_dict equivalence, training,
attention processors, memory) from tester mixins in the checkout's `tests/` package. Which API
the checkout has decides the form: `tests/models/testing_utils` (a `BaseModelTesterConfig` plus
pytest mixins, diffusers since early 2026) or `tests/models/test_modeling_common.py` (a unittest
`ModelTesterMixin` with `dummy_input` / `prepare_init_args_and_inputs_for_common`). The file also
carries the parity test: the converted checkpoint against values the reference computed.

The test runs with the checkout's own pytest setup, in the sandbox, the checkout read-only.
"""

from __future__ import annotations

import ast
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sandbox
from agent.render import render

CONFIG_API = Path("tests/models/testing_utils/__init__.py")
UNITTEST_API = Path("tests/models/test_modeling_common.py")
# the mixins a model test takes, when the checkout has them (each skips what the model lacks)
CONFIG_MIXINS = ("ModelTesterMixin", "TrainingTesterMixin", "AttentionTesterMixin", "MemoryTesterMixin")
UNITTEST_MIXINS = ("ModelTesterMixin",)
CHECKPOINT_ENV = "INTEGRATE_PARITY_CHECKPOINT"
# diffusers' own ruff settings, for a checkout that carries none
DIFFUSERS_RUFF = ("line-length = 119", "lint.isort.lines-after-imports = 2", "lint.isort.known-first-party = ['diffusers']")
_OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\s+(.*)$")


class MixinsMissing(Exception):
    """The checkout has neither form of diffusers' model tester mixins."""


@dataclass(frozen=True)
class MixinApi:
    style: str  # "config" (tests/models/testing_utils) or "unittest" (test_modeling_common)
    mixins: tuple[str, ...]


def _exported_names(path: Path) -> set[str]:
    """Names a module defines or imports at top level (read, never imported)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom):
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def mixin_api(checkout: Path) -> MixinApi:
    """Which tester mixins the checkout's tests package offers."""
    names = _exported_names(checkout / CONFIG_API)
    if {"BaseModelTesterConfig", "ModelTesterMixin"} <= names:
        return MixinApi("config", tuple(m for m in CONFIG_MIXINS if m in names))
    if "ModelTesterMixin" in _exported_names(checkout / UNITTEST_API):
        return MixinApi("unittest", UNITTEST_MIXINS)
    raise MixinsMissing(
        f"the checkout has neither {CONFIG_API} nor a ModelTesterMixin in {UNITTEST_API}: "
        "the model test needs diffusers' tester mixins"
    )


def short_name(class_name: str) -> str:
    """TinyDiTTransformer2DModel -> TinyDiTTransformer2D (diffusers' test class naming)."""
    return class_name.removesuffix("Model") or class_name


def render_diffusers_test(
    *,
    class_name: str,
    api: MixinApi,
    config: dict[str, Any],
    inputs: list[dict[str, Any]],
    reference_outputs: list[dict[str, Any]],
    seed: int,
    atol: float,
    parity_command: str,
    hub_checkpoint: dict[str, str | None] | None = None,
) -> str:
    """The test file's text. `inputs` are the run's input recipes (names as the port's forward
    takes them), `reference_outputs` the reference's sampled outputs (verify's
    `reference_samples`), `hub_checkpoint` {"repo_id", "subfolder"} once the converted weights are
    on the Hub (adds a @slow test that reads them there)."""
    if not inputs or not reference_outputs:
        raise ValueError("a model test needs the run's inputs and the reference's outputs")
    return render(
        "tests/test_model_diffusers.py.j2",
        year=time.strftime("%Y"),
        style=api.style,
        mixins=list(api.mixins),
        class_name=class_name,
        short_name=short_name(class_name),
        init_dict=repr(config),
        inputs=inputs,
        main_input=inputs[0]["name"],
        input_shape=repr(tuple(inputs[0]["shape"][1:])),
        output_shape=repr(tuple(reference_outputs[0]["shape"][1:])),
        reference_outputs=repr(reference_outputs),
        seed=seed,
        atol=atol,
        parity_command=parity_command,
        hub_checkpoint=hub_checkpoint,
    )


def _ruff() -> str | None:
    exe = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    return exe if Path(exe).exists() else None


def has_ruff_settings(checkout: Path) -> bool:
    """Whether the checkout configures ruff itself (diffusers does, in pyproject.toml)."""
    pyproject = checkout / "pyproject.toml"
    return (checkout / "ruff.toml").is_file() or (pyproject.is_file() and "[tool.ruff" in pyproject.read_text(errors="replace"))


def format_in_checkout(path: Path, checkout: Path) -> str:
    """Sort imports and format `path` with the checkout's own ruff settings (its pyproject.toml),
    as `make style` would. ruff parses, never runs, the code. Returns what happened."""
    import subprocess

    ruff = _ruff()
    if ruff is None:
        return "not formatted: ruff not found"
    rel = str(path.relative_to(checkout))
    overrides = [] if has_ruff_settings(checkout) else [arg for setting in DIFFUSERS_RUFF for arg in ("--config", setting)]
    subprocess.run([ruff, "check", "--no-cache", *overrides, "--select", "I", "--fix", "--quiet", rel], cwd=checkout, capture_output=True, text=True)
    fmt = subprocess.run([ruff, "format", "--no-cache", *overrides, "--quiet", rel], cwd=checkout, capture_output=True, text=True)
    if fmt.returncode != 0:
        return f"not formatted: {(fmt.stderr.strip().splitlines() or ['ruff format failed'])[-1]}"
    return "formatted"


def _relative(name: str, rel: str) -> str:
    """pytest names tests by a path relative to where it ran; keep the checkout-relative part."""
    at = name.find(rel)
    return name[at:] if at > 0 else name


def parse_pytest_report(stdout: str, prefix_of: str = "") -> dict[str, Any]:
    """Outcome per test from pytest's `-rA` short summary, and the counts. Test ids are cut to
    start at `prefix_of` (the test file relative to the checkout) when they contain it."""
    tests: dict[str, str] = {}
    reasons: dict[str, str] = {}
    lines = stdout.splitlines()
    # only the short summary: captured logs above it have lines that start with ERROR too
    start = next((i for i, line in enumerate(lines) if "short test summary info" in line), len(lines))
    for line in lines[start + 1:]:
        match = _OUTCOME.match(line.strip())
        if not match:
            continue
        outcome, rest = match.groups()
        if outcome == "SKIPPED":  # "SKIPPED [1] path:line: reason"
            where, _, reason = rest.partition(": ")
            where = where.split("] ", 1)[-1].lstrip("./")
            reasons[where] = reason
            tests[f"skipped {where}"] = "skipped"
            continue
        name, _, reason = rest.partition(" - ")
        name = _relative(name.strip(), prefix_of) if prefix_of else name.strip()
        tests[name] = outcome.lower()
        if reason:
            reasons[name] = reason.strip()
    counts: dict[str, int] = {}
    for outcome in tests.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    return {"tests": tests, "reasons": reasons, "counts": counts}


def run_diffusers_test(test_file: Path, checkout: Path, checkpoint_dir: Path | None, scratch: Path,
                       limits: sandbox.Limits | None = None) -> dict[str, Any]:
    """Run the test file with pytest under the checkout's own conftest, in the sandbox, the
    checkout and the checkpoint read-only. `passed`: the parity test ran and passed (a skipped
    parity test is not a pass); `suite_passed`: that, and no test of the file failed (what
    diffusers' CI asks); `failed` lists the failed tests."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    env = {"PYTHONPATH": str(checkout / "src"), "PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_OFFLINE": "1"}
    if checkpoint_dir is not None:
        env[CHECKPOINT_ENV] = str(checkpoint_dir)
    cmd = [sys.executable, "-m", "pytest", str(test_file), "--rootdir", str(checkout), "-p", "no:cacheprovider",
           "-rA", "-q", "--no-header", "-o", "addopts=", "-W", "ignore::DeprecationWarning"]
    res = sandbox.run(cmd, scratch, ro_paths=[checkout, *([checkpoint_dir] if checkpoint_dir else [])], env=env,
                      limits=limits or sandbox.Limits(output_bytes=400_000))
    report = parse_pytest_report(res.stdout, prefix_of=test_file.relative_to(checkout).as_posix())
    failed = {name: outcome for name, outcome in report["tests"].items() if outcome in ("failed", "error")}
    parity = {name: outcome for name, outcome in report["tests"].items() if "Parity" in name}
    parity_passed = bool(parity) and all(outcome == "passed" for outcome in parity.values())
    ran = res.reason == "exit" and res.returncode in (0, 1) and bool(report["tests"])
    reason = res.reason if res.reason != "exit" else f"pytest exit {res.returncode}"
    return {
        # verify gates on the parity claim; the whole suite passing is what diffusers' CI needs,
        # so publishing is what `suite_passed` gates
        "passed": ran and parity_passed,
        "suite_passed": ran and res.returncode == 0 and not failed and parity_passed,
        "ran": ran,
        "parity_passed": parity_passed,
        "counts": report["counts"],
        "tests": report["tests"],
        "failed": sorted(failed),
        "reasons": {k: v[:300] for k, v in report["reasons"].items()},
        "reason": reason,
        "output": (res.stdout + res.stderr)[-4000:],
        "wall_s": res.wall_s,
        "isolation": res.isolation,
    }
