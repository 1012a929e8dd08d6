"""The compliance suite on the port of the bundled example, as a run makes it (`integrate
examples/tiny-dit --out DIR`): every applicable check runs with its honest result.

What "applicable" means is read from the generated model file itself (its forward's parameters,
its class attributes). The offline port goes through the blocks and conventions stages, so it
has return_dict, an output dataclass and proven gradient checkpointing, and runs in half
precision: those checks must pass."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from conftest import EXAMPLE, integrate

from agent.compliance import markdown_table, run_compliance
from agent.run_state import Run
from sandbox.compliance.registry import BY_NAME


@pytest.fixture(scope="session")
def example_run(tmp_path_factory) -> Run:
    work = tmp_path_factory.mktemp("compliance-example")
    proc = integrate(str(EXAMPLE), "--out", "out/tiny-dit", "--llm", "none", "--json", cwd=work)
    assert proc.returncode == 0, proc.stderr
    return Run.load(work / "runs" / json.loads(proc.stdout)["run_id"])


@pytest.fixture(scope="session")
def example_result(example_run) -> dict:
    return run_compliance(example_run)


def port_class(run: Run) -> ast.ClassDef:
    source = Path(run.result("scaffold")["model_file"]).read_text()
    name = run.result("plan")["class_name"]
    return next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef) and n.name == name)


def forward_parameters(cls: ast.ClassDef) -> list[str]:
    forward = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "forward")
    return [a.arg for a in [*forward.args.args, *forward.args.kwonlyargs]][1:]


def class_flag(cls: ast.ClassDef, name: str) -> bool:
    for node in cls.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return isinstance(node.value, ast.Constant) and node.value.value is True
    return False


def rows(result: dict) -> dict[str, dict]:
    return {r["check"]: r for r in result["checks"]}


def test_every_check_reports_once_with_a_known_status(example_result):
    assert [r["check"] for r in example_result["checks"]] == list(BY_NAME)
    assert all(r["status"] in ("passed", "failed", "skipped") and r["summary"] for r in example_result["checks"])
    assert example_result["sandbox"]["isolation"] in ("full", "reduced")
    counts = example_result["counts"]
    assert sum(counts.values()) == len(BY_NAME)
    assert [f["check"] for f in example_result["findings"]] == [r["check"] for r in example_result["checks"] if r["status"] == "failed"]


def test_return_dict_contract_is_judged_on_the_real_forward(example_run, example_result):
    row = rows(example_result)["return_dict"]
    assert forward_parameters(port_class(example_run)) == ["hidden_states", "timestep", "class_labels", "return_dict"]
    assert row["status"] == "passed", row["summary"]
    assert row["evidence"]["return_dict_true"] == "Transformer2DModelOutput" and row["evidence"]["return_dict_false"] == "tuple"
    assert row["evidence"]["tuple_vs_dataclass"]["max_abs_diff"] == 0.0


def test_save_load_batch_and_backends_pass_on_the_faithful_port(example_result):
    got = rows(example_result)
    assert got["save_load"]["status"] == "passed", got["save_load"]["summary"]
    steps = got["save_load"]["evidence"]["steps"]
    assert [s["state_dict_keys"] for s in steps] == [39, 39]  # from_pretrained, then the save round trip (each qkv split by the blocks stage)
    assert got["batch_independence"]["status"] == "passed", got["batch_independence"]["summary"]
    assert {r["sample"] for r in got["batch_independence"]["evidence"]["compared"]} == {0, 1}
    backends = got["attention_backends"]
    assert backends["status"] == "passed", backends["summary"]
    assert backends["evidence"]["ran"][0] == "native" and len(backends["evidence"]["ran"]) >= 2
    for r in backends["evidence"]["backends"]:
        if r["status"] == "ran":  # each backend that ran really computed the attention
            assert r["calls"] == {r["backend"]: r["calls"][r["backend"]]} and r["calls"][r["backend"]] > 0


def test_flags_and_masks_the_port_does_not_have_are_skipped_with_the_reason(example_run, example_result):
    cls, got = port_class(example_run), rows(example_result)
    assert class_flag(cls, "_supports_gradient_checkpointing")  # the conventions stage proved and added it
    assert got["gradient_checkpointing"]["status"] == "passed", got["gradient_checkpointing"]["summary"]
    assert got["gradient_checkpointing"]["evidence"]["checkpointed_calls"] > 0
    if not any(p.endswith("mask") for p in forward_parameters(cls)):
        assert got["attention_mask"]["status"] == "skipped"
        assert got["attention_mask"]["summary"] == "the forward takes no attention mask"
    else:
        assert got["attention_mask"]["status"] != "skipped" or "cannot tell" in got["attention_mask"]["summary"]


def test_half_precision_results_carry_their_evidence(example_result):
    for name in ("fp16_finite", "bf16_finite"):
        row = rows(example_result)[name]
        assert row["status"] == "passed", row["summary"]  # the blocks stage's timestep glue casts to the embedding's dtype
        assert row["evidence"]["outputs"] and all(o["nan"] == 0 and o["inf"] == 0 for o in row["evidence"]["outputs"])


def test_compile_runs_and_matches_eager(example_result):
    row = rows(example_result)["torch_compile"]
    assert row["status"] == "passed", row["summary"]
    assert row["evidence"]["vs_eager"]["max_abs_diff"] <= row["evidence"]["tolerance"]


def test_result_is_recorded_in_the_run_and_renders_as_a_table(example_run, example_result):
    saved = json.loads(example_run.path("compliance", "summary.json").read_text())
    assert saved["counts"] == example_result["counts"]
    table = markdown_table(example_result)
    assert table.startswith("| check | result | details | time |")
    assert all(f"| {r['title']} |" in table for r in example_result["checks"])
