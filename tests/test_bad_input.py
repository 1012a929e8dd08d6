"""Each bad input: one line naming the problem, exit 2, nothing left in the user's target."""

import json
import struct

import git
import pytest
from conftest import assert_one_line_error, integrate


def _assert_no_output(tmp_path):
    assert not (tmp_path / "out").exists()


def test_missing_path(tmp_path):
    proc = integrate(str(tmp_path / "nope"), "--out", "out/x", cwd=tmp_path)
    assert_one_line_error(proc, "source not found")
    _assert_no_output(tmp_path)
    assert not (tmp_path / "runs").exists()


def test_repo_without_config(tmp_path, example):
    (example / "config.json").unlink()
    proc = integrate(str(example), "--out", "out/x", cwd=tmp_path)
    assert_one_line_error(proc, "no config.json")
    _assert_no_output(tmp_path)


def test_truncated_safetensors(tmp_path, example):
    weights = example / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    proc = integrate(str(example), "--out", "out/x", cwd=tmp_path)
    assert_one_line_error(proc, "corrupt safetensors", "model.safetensors")
    _assert_no_output(tmp_path)


def test_safetensors_with_header_beyond_file(tmp_path, example):
    (example / "model.safetensors").write_bytes(struct.pack("<Q", 10_000) + b"{}")
    proc = integrate(str(example), "--out", "out/x", cwd=tmp_path)
    assert_one_line_error(proc, "corrupt safetensors", "beyond the end of the file")


def test_reference_code_that_fails_to_import(tmp_path, example):
    code = example / "tiny_dit.py"
    code.write_text("import a_module_nobody_has\n" + code.read_text())
    proc = integrate(str(example), "--out", "out/x", cwd=tmp_path)
    assert_one_line_error(proc, "fails to import", "a_module_nobody_has")
    _assert_no_output(tmp_path)


def test_reference_code_with_syntax_error(tmp_path, example):
    code = example / "tiny_dit.py"
    code.write_text(code.read_text() + "\ndef broken(:\n")
    proc = integrate(str(example), "--out", "out/x", cwd=tmp_path)
    assert_one_line_error(proc, "does not parse", "tiny_dit.py")


def test_weights_that_do_not_fit_the_model(tmp_path, example):
    config = json.loads((example / "config.json").read_text())
    config["hidden_size"] = 32
    (example / "config.json").write_text(json.dumps(config))
    proc = integrate(str(example), "--out", "out/x", cwd=tmp_path)
    assert_one_line_error(proc, "do not fit")


def test_hub_id_that_cannot_be_reached(tmp_path):
    proc = integrate("acme/does-not-exist", "--out", "out/x", cwd=tmp_path, env={"HF_HOME": str(tmp_path / "hf")})
    assert_one_line_error(proc, "acme/does-not-exist")
    _assert_no_output(tmp_path)


def test_target_that_is_not_a_git_checkout(tmp_path, example):
    target = tmp_path / "plain"
    (target / "src" / "diffusers").mkdir(parents=True)
    proc = integrate(str(example), "--target", str(target), cwd=tmp_path)
    assert_one_line_error(proc, "not a git checkout")
    assert sorted(p.name for p in target.rglob("*")) == ["diffusers", "src"]


def test_target_with_uncommitted_changes(tmp_path, example, diffusers_checkout):
    init = diffusers_checkout / "src" / "diffusers" / "__init__.py"
    init.write_text(init.read_text() + "\n# local edit\n")
    before = init.read_text()
    proc = integrate(str(example), "--target", str(diffusers_checkout), cwd=tmp_path)
    assert_one_line_error(proc, "uncommitted changes")
    repo = git.Repo(diffusers_checkout)
    assert init.read_text() == before
    assert [h.name for h in repo.heads] == ["main"]


def test_target_that_is_not_diffusers(tmp_path, example):
    target = tmp_path / "other"
    target.mkdir()
    repo = git.Repo.init(target)
    (target / "a.txt").write_text("x")
    repo.git.add(A=True)
    repo.index.commit("init", author=git.Actor("t", "t@t"), committer=git.Actor("t", "t@t"))
    proc = integrate(str(example), "--target", str(target), cwd=tmp_path)
    assert_one_line_error(proc, "not a diffusers checkout")


def test_anthropic_without_a_key_is_refused_not_faked(tmp_path, example):
    proc = integrate(str(example), "--out", "out/x", "--llm", "anthropic", cwd=tmp_path)
    assert_one_line_error(proc, "--llm anthropic", "ANTHROPIC_API_KEY")
    _assert_no_output(tmp_path)


@pytest.mark.parametrize("args, needle", [
    (["--llm", "scripted:missing.jsonl"], "script not found"),
    (["--llm", "gpt"], "--llm must be one of"),
    (["--llm", "scripted:bad.jsonl"], "bad.jsonl:1: not JSON"),
    (["--llm", "scripted:good.jsonl", "--model", "claude-unknown"], "no prices for model 'claude-unknown'"),
    (["--llm", "scripted:good.jsonl", "--max-turns", "0"], "--max-turns must be positive"),
    (["--llm", "scripted:good.jsonl", "--prices", "prices.json"], "price table prices.json is not JSON"),
])
def test_bad_refinement_settings(tmp_path, example, args, needle):
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    (tmp_path / "good.jsonl").write_text('{"content": []}\n')
    (tmp_path / "prices.json").write_text("{")
    proc = integrate(str(example), "--out", "out/x", *args, cwd=tmp_path)
    assert_one_line_error(proc, needle)


def test_cuda_without_gpu(tmp_path, example):
    import torch

    if torch.cuda.is_available():
        return
    proc = integrate(str(example), "--out", "out/x", "--device", "cuda", cwd=tmp_path)
    assert_one_line_error(proc, "no CUDA device")
