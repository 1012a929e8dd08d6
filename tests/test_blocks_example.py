"""The blocks stage on the bundled example, end to end: the hand-written embedders, MLP, attention
and output layer become diffusers blocks in their own commit, parity stays exact, the converted
weights follow (split qkv, reordered modulation), and what stays custom says why."""

import json

import git
import pytest
from conftest import EXAMPLE, integrate

from agent.errors import IntegrateError
from agent.gitsafe import Git
from agent.stages.blocks import COMMIT_PREFIX, _back_to_port


@pytest.fixture(scope="module")
def ported(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("blocks-example")
    proc = integrate(str(EXAMPLE), "--out", "out", "--llm", "none", "--run-id", "r", "--json", cwd=cwd, timeout=900)
    assert proc.returncode == 0, proc.stderr
    run = json.loads((cwd / "runs" / "r" / "run.json").read_text())
    return cwd, run, proc


def test_diffusers_blocks_replace_the_hand_written_modules(ported):
    cwd, run, proc = ported
    result = run["stages"]["blocks"]["result"]
    assert result["status"] == "applied" and result["parity"]["passed"] and result["parity"]["max_abs_diff"] <= 1e-5
    blocks = {row["reference_class"]: row["block"] for row in result["substituted"]}
    assert blocks == {
        "TimestepEmbedder": "Timesteps + TimestepEmbedding",
        "LabelEmbedder": "LabelEmbedding",
        "Attention": "Attention",
        "Mlp": "FeedForward",
        "FinalLayer": "AdaLayerNormContinuous",
    }
    assert all(row["max_abs_diff"] <= 1e-5 and row["calls_proven"] >= row["instances"] for row in result["substituted"])
    settings = {row["reference_class"]: row["settings"] for row in result["substituted"]}
    assert settings["TimestepEmbedder"]["flip_sin_to_cos"] is True and settings["TimestepEmbedder"]["downscale_freq_shift"] == 0
    assert settings["Mlp"]["activation_fn"] == "gelu-approximate"
    assert settings["Attention"]["rotary"] == "complex" and settings["Attention"]["dim_head"] == "dim // num_heads"
    assert settings["FinalLayer"]["out_features"] == "patch_size * patch_size * out_channels"
    assert [f["block"] for f in result["functions"] if f["replaced"]] == ["get_2d_sincos_pos_embed"]
    (custom,) = result["custom"]
    assert custom["reference_class"] == "DiTBlock" and "attn, mlp are diffusers blocks now" in custom["reason"]
    share = result["share"]
    assert share["total_parameters"] == 181072 and share["in_diffusers_blocks"] == 130064  # everything but DiTBlock's own layers and the patch conv
    progress = " ".join(proc.stderr.split())  # the console wraps long lines
    assert "applied: 5 classes and 1 function -> diffusers blocks, 1 custom; 72% of parameters in diffusers blocks" in progress

    # the file as this stage committed it (the conventions stage renames the forward's arguments after it)
    model = git.Repo(cwd / "out").git.show(f"{result['commit']}:transformer_tiny_dit.py")
    for gone in ("class TimestepEmbedder", "class LabelEmbedder", "class Attention", "class Mlp", "class FinalLayer",
                 "def precompute_freqs_cis", "def get_1d_sincos_pos_embed_from_grid", "import numpy", "import math"):
        assert gone not in model, gone
    for line in ("self.t_embedder = TimestepEmbedding(256, hidden_size)",
                 "self.time_proj = Timesteps(256, flip_sin_to_cos=True, downscale_freq_shift=0)",
                 "c = self.t_embedder(self.time_proj(t).to(self.t_embedder.linear_1.weight.dtype)) + self.y_embedder(y)",
                 'self.mlp = FeedForward(hidden_size, activation_fn="gelu-approximate", inner_dim=int(hidden_size * mlp_ratio))',
                 "processor=TinyDiTAttnProcessor()",
                 "class TinyDiTAttnProcessor:",
                 "dispatch_attention_fn(",
                 "x = self.proj_out(self.final_layer(x, c))"):
        assert line in model, line


def test_its_own_commit_on_top_of_the_port_and_the_weights_follow(ported):
    cwd, run, _ = ported
    repo = git.Repo(cwd / "out")
    result, port = run["stages"]["blocks"]["result"], run["stages"]["port"]["result"]
    commit = repo.commit(result["commit"])
    assert commit.message.startswith(f"{COMMIT_PREFIX}: TimestepEmbedder -> Timesteps + TimestepEmbedding")
    assert [p.hexsha for p in commit.parents] == [port["commit"]] == [result["base_commit"]]
    assert set(commit.stats.files) == {"transformer_tiny_dit.py"}  # only the model file: structure, no behaviour
    mapping = (cwd / "out" / "_weight_mapping.py").read_text()
    assert "'blocks.0.attn.qkv.weight': [('blocks.0.attn.to_q.weight', 0, 64), ('blocks.0.attn.to_k.weight', 64, 128)" in mapping
    assert "'final_layer.adaLN_modulation.1.weight': ('final_layer.linear.weight', 2, (1, 0))" in mapping  # shift/scale -> scale/shift
    assert "'t_embedder.mlp.0.weight': 't_embedder.linear_1.weight'" in mapping
    verify = run["stages"]["verify"]["result"]
    assert verify["parity"]["passed"] and verify["parity"]["max_abs_diff"] <= 1e-5
    assert verify["blocking"] == []  # the written blocks and processor pass the tamper rules


def test_the_pr_body_lists_each_module_and_the_share(ported):
    cwd, run, _ = ported
    pr = (cwd / "out" / "PR.md").read_text()
    assert "130,064 of 181,072 parameters (71.8%) live in diffusers blocks" in pr
    section = pr.split("## diffusers building blocks", 1)[1].split("## Parity", 1)[0]
    rows = {line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| `")}
    assert set(rows) == {"`TimestepEmbedder`", "`LabelEmbedder`", "`Attention`", "`Mlp`", "`FinalLayer`", "`DiTBlock`",
                         "`get_2d_sincos_pos_embed()`"}
    assert "`FeedForward` (activation_fn=gelu-approximate" in rows["`Mlp`"] and "exact alone on 2 recorded calls" in rows["`Mlp`"]
    assert "| custom |" in rows["`DiTBlock`"] and "its parts attn, mlp are diffusers blocks now" in rows["`DiTBlock`"]


def test_an_interrupted_attempt_starts_again_from_the_port(tmp_path):
    repo = git.Repo.init(tmp_path)
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "t")
        cw.set_value("user", "email", "t@example.com")
    model = tmp_path / "model.py"
    model.write_text("port\n")
    repo.index.add(["model.py"])
    port = repo.index.commit("Port").hexsha
    model.write_text("blocks\n")
    repo.index.add(["model.py"])
    repo.index.commit(f"{COMMIT_PREFIX}: A -> B")
    model.write_text("half-written\n")  # killed while writing the next attempt
    hardened = Git(tmp_path / ".git", tmp_path)
    _back_to_port(hardened, port, model)
    assert hardened.head() == port and model.read_text() == "port\n"

    repo.index.commit("someone else's commit")
    with pytest.raises(IntegrateError, match="moved past the port"):
        _back_to_port(hardened, port, model)


def test_a_substitution_that_breaks_the_whole_model_is_dropped_and_the_rest_kept(tmp_path):
    """DiT-style initialisation code reaches into a submodule from outside its class (the
    codemod cannot see `block.mlp.fc2` through the loop variable): the port with FeedForward no
    longer builds, full parity says so, that one substitution is dropped and the others are
    committed with parity exact."""
    import shutil

    source = tmp_path / "tiny-dit"
    shutil.copytree(EXAMPLE, source)
    code = (source / "tiny_dit.py").read_text()
    anchor = "        self.final_layer = FinalLayer(hidden_size, patch_size, self.out_channels)\n"
    code = code.replace(anchor, anchor + "        for block in self.blocks:\n            nn.init.zeros_(block.mlp.fc2.bias)\n")
    (source / "tiny_dit.py").write_text(code)
    proc = integrate(str(source), "--out", "out", "--llm", "none", "--run-id", "r", cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "runs" / "r" / "run.json").read_text())["stages"]["blocks"]["result"]
    assert result["status"] == "applied" and result["parity_runs"] == 2 and result["parity"]["max_abs_diff"] <= 1e-5
    assert [a["passed"] for a in result["attempts"]] == [False, True] and "Mlp" not in result["attempts"][1]["applied"]
    mlp = next(row for row in result["custom"] if row["reference_class"] == "Mlp")
    assert mlp["closest"] == "FeedForward" and mlp["reason"].startswith("full-model parity failed with it") and "fc2" in mlp["reason"]
    assert {row["reference_class"] for row in result["substituted"]} == {"TimestepEmbedder", "LabelEmbedder", "Attention", "FinalLayer"}
    assert "class Mlp" in (tmp_path / "out" / "transformer_tiny_dit.py").read_text()
