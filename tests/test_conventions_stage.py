"""The conventions stage on the bundled example, in a real run (reference, port, parity and the
gradient check all sandboxed): the port ends in diffusers form with parity exact and gradient
checkpointing proven; a group that breaks parity, and checkpointing that changes gradients, are
left out with their measured reasons."""

import ast
import json
import subprocess
import sys
import textwrap

import libcst as cst
import pytest
from conftest import EXAMPLE
from conventions_sources import run_until

import agent.porting.conventions as conventions_package
import agent.stages.conventions as stage_module
from agent.gitsafe import Git
from agent.stages.conventions import conventions
from agent.stages.convert import convert


@pytest.fixture(scope="module")
def ported(tmp_path_factory):
    work = tmp_path_factory.mktemp("conventions-stage")
    run = run_until(EXAMPLE, work / "out", work / "runs", stop="conventions")
    return work, run


def _forward_signature(source: str) -> list[tuple[str, object]]:
    cls = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "TinyDiTTransformer2DModel")
    fn = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "forward")
    defaults = [None] * (len(fn.args.args) - len(fn.args.defaults)) + [ast.literal_eval(d) for d in fn.args.defaults]
    return [(a.arg, d) for a, d in zip(fn.args.args, defaults, strict=True)][1:]


def test_broken_group_and_unequal_gradients_are_left_out(ported, monkeypatch):
    _, run = ported
    real_forward, real_class = conventions_package.forward_conventions, conventions_package.model_class_conventions

    def forward_off_by_a_little(module, target):  # breaks parity: the output is scaled
        module, report = real_forward(module, target)
        return cst.parse_module(module.code.replace("(sample=output)", "(sample=output * 1.001)")), report

    def checkpointing_off_by_a_little(module, target, *args):  # parity cannot see it (no_grad), gradients can
        module, report = real_class(module, target, *args)
        code = module.code.replace("self._gradient_checkpointing_func(block, ", "self._gradient_checkpointing_func(block, 1.001 * ")
        return cst.parse_module(code), report

    monkeypatch.setattr(conventions_package, "forward_conventions", forward_off_by_a_little)
    monkeypatch.setattr(conventions_package, "model_class_conventions", checkpointing_off_by_a_little)
    monkeypatch.setattr(stage_module, "GROUPS", ("forward", "model class"))
    result = conventions(run)

    assert result["status"] == "partial"
    assert result["groups_applied"] == ["model class"] and result["groups_left_out"] == ["forward"]
    failed = [a for a in result["attempts"] if not a["parity"]["passed"]]
    assert [a["groups"] for a in failed] == [["forward", "model class"], ["forward"]]
    assert all(a["why"] for a in failed)  # the verdict's own reasons
    grads = result["gradient_checkpointing"]
    assert grads["proven"] is False and "differ" in grads["reason"] and grads["checkpointed_calls"] == 2
    assert "_supports_gradient_checkpointing" not in result["flags"] and "_no_split_modules" in result["flags"]
    assert result["parity"]["passed"] and result["forward_renames"] == {}
    model = (ported[0] / "out" / "transformer_tiny_dit.py").read_text()
    assert "gradient_checkpointing" not in model and "return_dict" not in model and "_no_split_modules" in model
    messages = Git.for_workspace(ported[0] / "out").run("log", "--format=%s").splitlines()
    assert messages[0].startswith("Conventions: model class") and messages[1].startswith("Use diffusers blocks")  # on the blocks stage's commit


def test_example_ends_in_diffusers_form(ported):
    work, run = ported
    run.start_stage("conventions")
    result = conventions(run)
    run.finish_stage("conventions", result, 0.0)

    assert result["status"] == "applied" and result["groups_left_out"] == []
    assert result["parity"]["passed"] and result["parity"]["max_abs_diff"] == 0.0
    assert result["forward_renames"] == {"x": "hidden_states", "t": "timestep", "y": "class_labels"}
    assert result["config_renames"] == {"input_size": "sample_size", "depth": "num_layers", "num_heads": "num_attention_heads",
                                        "num_classes": "num_embeds_ada_norm"}
    grads = result["gradient_checkpointing"]
    assert grads["proven"] is True and grads["max_abs_diff"] == 0.0 and grads["checkpointed_calls"] == 2
    # 39 parameters once the blocks stage split each fused qkv (31 in the reference); 28 of them in the two DiT blocks
    assert grads["parameters_compared"] == 39 and grads["isolation"] in ("full", "reduced")
    assert grads["block_parameters_with_gradient"] == grads["block_parameters"] == 28  # every block weight's gradient was compared
    assert grads["return_dict"] == {"dataclass": "Transformer2DModelOutput", "false_gives_tuple": True, "same_tensors": True}

    out = work / "out"
    source = (out / "transformer_tiny_dit.py").read_text()
    assert _forward_signature(source) == [("hidden_states", None), ("timestep", None), ("class_labels", None), ("return_dict", True)]
    assert "hidden_states: torch.Tensor," in source and ") -> Transformer2DModelOutput | tuple:" in source
    assert "return Transformer2DModelOutput(sample=output)" in source
    for name in ("sample_size", "patch_size", "in_channels", "attention_head_dim", "num_layers", "num_attention_heads", "num_embeds_ada_norm"):
        assert f"        {name} (`int`, defaults to `" in source, name
    # the blocks stage already put diffusers' Attention in place of the reference's: nothing left to rename
    assert "class Attention(" not in source and "from diffusers.models.attention_processor import Attention" in source
    assert result["changes"]["class names"] == []
    assert "_no_split_modules = [\"DiTBlock\"]" in source
    assert "\n    Parameters:\n" in source and "_supports_gradient_checkpointing = True" in source
    assert "_skip_layerwise_casting_patterns = [\"x_embedder\", \"t_embedder\", \"y_embedder\", \"adaLN_modulation\"]" in source
    assert result["commit"] == Git.for_workspace(out).head()

    run.start_stage("convert")
    converted = convert(run)
    run.finish_stage("convert", converted, 0.0)
    saved = json.loads((out / "weights" / "config.json").read_text())
    assert {k: v for k, v in saved.items() if not k.startswith("_")} == result["candidate_config"]
    # the shipped mapping converts the reference's own config.json to the same arguments
    script = textwrap.dedent(f"""
        import importlib.util, json, sys
        spec = importlib.util.spec_from_file_location("m", {str(out / '_weight_mapping.py')!r})
        m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
        print(json.dumps(m.convert_config(json.load(open({str(EXAMPLE / 'config.json')!r})))))
        sys.path.insert(0, {str(out)!r})
        import torch
        from transformer_tiny_dit import TinyDiTTransformer2DModel
        model = TinyDiTTransformer2DModel.from_pretrained({str(out / 'weights')!r}).eval()
        g = torch.Generator().manual_seed(3)
        kw = dict(hidden_states=torch.randn(2, 4, 16, 16, generator=g), timestep=torch.rand(2, generator=g) * 1000, class_labels=torch.tensor([1, 2]))
        with torch.no_grad():
            a, b = model(**kw), model(**kw, return_dict=False)
        print(type(a).__name__, type(b).__name__, len(b), bool((a.sample == b[0]).all()))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert json.loads(lines[0]) == result["candidate_config"]
    assert lines[1] == "Transformer2DModelOutput tuple 1 True"


def test_a_resumed_attempt_starts_from_the_previous_commit(tmp_path):
    from agent.errors import IntegrateError
    from agent.gitsafe import init_separate
    from agent.stages.conventions import _restart_from
    from agent.workspace import commit_all

    (tmp_path / "tree").mkdir()
    repo = init_separate(tmp_path / "tree", tmp_path / "git")
    model = tmp_path / "tree" / "model.py"
    model.write_text("ported\n")
    base = commit_all(repo, "Port X (structural, numerics untouched)")
    model.write_text("half-edited\n")
    _restart_from(repo, base, model)  # an attempt killed before committing
    assert model.read_text() == "ported\n"

    model.write_text("conventions\n")
    commit_all(repo, "Conventions: config (parity max abs 0.00e+00)")
    _restart_from(repo, base, model)  # an attempt killed after a commit of its own
    assert repo.head() == base and model.read_text() == "ported\n"

    model.write_text("someone else's\n")
    commit_all(repo, "A commit this stage did not make")
    with pytest.raises(IntegrateError, match="did not make"):
        _restart_from(repo, base, model)
