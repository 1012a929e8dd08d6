"""The README's main command on the bundled example: every stage, the published folder, and a
separate process that loads the port with from_pretrained and matches the reference."""

import json
import subprocess
import sys
import textwrap

import git
import pytest
from conftest import EXAMPLE, integrate

STAGES = ["resolve", "analyze", "plan", "scaffold", "port", "blocks", "conventions", "refine", "convert", "verify", "publish"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    proc = integrate(str(EXAMPLE), "--out", "out/tiny-dit", "--llm", "none", "--json", cwd=work)
    assert proc.returncode == 0, proc.stderr
    return work, json.loads(proc.stdout), proc


def test_every_stage_recorded_in_run_json(finished_run):
    work, summary, _ = finished_run
    run = json.loads((work / "runs" / summary["run_id"] / "run.json").read_text())
    assert list(run["stages"]) == STAGES
    assert all(run["stages"][s]["status"] == "done" for s in STAGES)
    assert run["status"] == "passed"
    assert run["stages"]["resolve"]["result"]["weights"][0]["tensors"] == 31
    assert run["stages"]["analyze"]["result"]["top_class"]["name"] == "TinyDiT"
    assert (work / "runs" / summary["run_id"] / "plan.md").read_text().startswith("# Plan: port TinyDiT")


def test_summary_reports_measured_parity_and_skipped_refinement(finished_run):
    _, summary, proc = finished_run
    assert summary["parity"]["passed"] is True
    assert summary["parity"]["max_abs_diff"] <= 1e-5
    assert summary["refinement"]["status"] == "skipped"
    assert "resolve" in proc.stderr and "publish" in proc.stderr  # per-stage progress


def test_output_folder_is_a_git_repo_with_port_commits(finished_run):
    work, _, _ = finished_run
    out = work / "out" / "tiny-dit"
    repo = git.Repo(out)
    messages = [c.message for c in repo.iter_commits()]
    assert any(m.startswith("Scaffold") for m in messages)
    assert any("structural, numerics untouched" in m for m in messages)
    assert not repo.is_dirty(untracked_files=True)
    for name in ("transformer_tiny_dit.py", "_weight_mapping.py", "PR.md", "parity_spec.py", "reports/parity.json", "reports/parity_layers.png", "weights/config.json", "weights/diffusion_pytorch_model.safetensors"):
        assert (out / name).is_file(), name


def test_pr_md_holds_parity_table_findings_and_commands(finished_run):
    work, _, _ = finished_run
    pr = (work / "out" / "tiny-dit" / "PR.md").read_text()
    assert "| transformer (converted weights) |" in pr
    assert "| transformer (reloaded with from_pretrained) |" in pr
    assert "## Convention checks" in pr
    assert "integrate parity" in pr and "integrate check" in pr
    # the blocks stage replaced the attention's three rewrites, the conventions stage renamed the patchify line's `x`
    assert "1 call rewritten" in pr and "4 more were replaced by later steps" in pr
    assert "## diffusers conventions" in pr and "`forward(hidden_states, timestep, class_labels, return_dict)` returning `Transformer2DModelOutput`" in pr
    assert "`input_size` -> `sample_size`" in pr and "`hidden_size` -> `attention_head_dim` (= `hidden_size` / `num_heads`)" in pr
    assert "convert_config()" in pr and "`_supports_gradient_checkpointing = True`" in pr


def test_port_has_no_einops_and_no_direct_sdpa(finished_run):
    work, summary, _ = finished_run
    model = (work / "out" / "tiny-dit" / "transformer_tiny_dit.py").read_text()
    assert "einops" not in model and "rearrange(" not in model
    assert "scaled_dot_product_attention" not in model
    assert "dispatch_attention_fn(" in model
    assert summary["findings"] == 0
    assert summary["parity"]["max_abs_diff"] <= 1e-5


def test_separate_process_loads_port_and_matches_reference(finished_run):
    work, _, _ = finished_run
    out = work / "out" / "tiny-dit"
    script = textwrap.dedent(f"""
        import json, sys, torch
        from safetensors.torch import load_file
        sys.path.insert(0, {str(EXAMPLE)!r})
        sys.path.insert(0, {str(out)!r})
        from tiny_dit import TinyDiT
        from transformer_tiny_dit import TinyDiTTransformer2DModel
        cfg = {{k: v for k, v in json.load(open({str(EXAMPLE / 'config.json')!r})).items() if k not in ("architectures", "model_type")}}
        ref = TinyDiT(**cfg).eval()
        ref.load_state_dict(load_file({str(EXAMPLE / 'model.safetensors')!r}))
        port = TinyDiTTransformer2DModel.from_pretrained({str(out / 'weights')!r}).eval()
        g = torch.Generator().manual_seed(7)
        x, t, y = torch.randn(3, 4, 16, 16, generator=g), torch.rand(3, generator=g) * 1000, torch.randint(0, 10, (3,), generator=g)
        with torch.no_grad():
            print((ref(x, t, y) - port(x, t, y).sample).abs().max().item())
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout.strip()) <= 1e-5


def test_generated_test_passes(finished_run):
    work, _, _ = finished_run
    test_file = work / "out" / "tiny-dit" / "test_transformer_tiny_dit.py"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)], capture_output=True, text=True, cwd=test_file.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_out_folder_is_not_reused(finished_run):
    work, _, _ = finished_run
    proc = integrate(str(EXAMPLE), "--out", "out/tiny-dit", "--llm", "none", cwd=work)
    assert proc.returncode == 2
    assert "not empty" in proc.stderr
    assert (work / "out" / "tiny-dit" / "PR.md").is_file()


def test_written_weight_mapping_reconverts_the_checkpoint(finished_run, tmp_path):
    """The shipped _weight_mapping.py converts the reference checkpoint again, to the same tensors."""
    from conftest import integrate as run_cli
    from safetensors.torch import load_file

    work, _, _ = finished_run
    out = work / "out" / "tiny-dit"
    proc = run_cli("convert", str(EXAMPLE / "model.safetensors"), "--mapping", str(out / "_weight_mapping.py"), "--out", "again", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    again = load_file(str(tmp_path / "again" / "diffusion_pytorch_model.safetensors"))
    shipped = load_file(str(out / "weights" / "diffusion_pytorch_model.safetensors"))
    assert again.keys() == shipped.keys() and all((again[k] == shipped[k]).all() for k in again)
