"""The block codemod and the step before it: proven settings become constructor expressions over
the reference's own arguments, instantiations and call sites are rewritten, what nothing uses
any more is removed, and what cannot be written everywhere is left alone with the reason."""

import ast

import pytest

from agent.porting.blocks import BY_NAME
from agent.porting.blocks.decide import Malformed, decide, express, init_expressions
from agent.porting.substitute import ClassPlan, FunctionPlan, substitute, tidy

PORT = '''
import math

import numpy as np
import torch
import torch.nn as nn


def get_2d_sincos_pos_embed(embed_dim, grid_size):
    return helper(embed_dim, grid_size)


def helper(embed_dim, grid_size):
    return np.zeros((grid_size * grid_size, embed_dim))


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden_size, frequency_embedding_size=256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(frequency_embedding_size, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size))

    def forward(self, t):
        return self.mlp(t * math.pi)


class Mlp(nn.Module):
    def __init__(self, in_features, hidden_features):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.fc2 = nn.Linear(hidden_features, in_features)

    def forward(self, x):
        return self.fc2(self.fc1(x))


class Block(nn.Module):
    def __init__(self, hidden_size, mlp_ratio=4.0):
        super().__init__()
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))

    def forward(self, x):
        return self.mlp(x)


class Model(nn.Module):
    def __init__(self, hidden_size=32, depth=2, grid=4):
        super().__init__()
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.blocks = nn.ModuleList([Block(hidden_size) for _ in range(depth)])
        pos = get_2d_sincos_pos_embed(hidden_size, grid)
        self.register_buffer("pos", torch.from_numpy(pos).float())

    def forward(self, x, t):
        c = self.t_embedder(t)
        for block in self.blocks:
            x = block(x) + c[:, None]
        return x + self.pos
'''

TIMESTEP = {"flip_sin_to_cos": True, "downscale_freq_shift": 0, "act_fn": "silu", "bias": True, "out_dim": False}
MLP = {"activation_fn": "gelu", "bias": True, "dim_out": False, "dropout": False, "final_dropout": False, "extra_args": False}


def plan(family: str, name: str, choice: dict, exprs: dict) -> ClassPlan:
    return ClassPlan(name=name, code=BY_NAME[family].code(choice), exprs=exprs)


def sincos() -> FunctionPlan:
    code = BY_NAME["sincos-2d"].code({"numpy": True, "extra": False})
    return FunctionPlan(name="get_2d_sincos_pos_embed", code=code, roles={"embed_dim": "embed_dim", "grid_size": "grid_size"})


def test_instantiations_slots_glue_removal_and_imports():
    out = substitute(PORT, [
        plan("timestep-embedding", "TimestepEmbedder", TIMESTEP, {"in_channels": "{frequency_embedding_size}", "time_embed_dim": "{hidden_size}"}),
        plan("feed-forward", "Mlp", MLP, {"dim": "{in_features}", "inner_dim": "{hidden_features}"}),
    ], [sincos()])
    code = out.code
    ast.parse(code)
    assert out.applied == ["TimestepEmbedder", "Mlp", "get_2d_sincos_pos_embed"] and not out.failed
    # the constructor keeps the reference's own expressions, including a default it never passed
    assert "self.t_embedder = TimestepEmbedding(256, hidden_size)" in code
    assert "self.time_proj = Timesteps(256, flip_sin_to_cos=True, downscale_freq_shift=0)" in code
    assert "c = self.t_embedder(self.time_proj(t).to(self.t_embedder.linear_1.weight.dtype))" in code  # the call site follows the glue
    assert 'FeedForward(hidden_size, activation_fn="gelu", inner_dim=int(hidden_size * mlp_ratio))' in code.replace("'", '"')
    # a numpy table becomes a tensor: the from_numpy around it goes
    assert "pos = get_2d_sincos_pos_embed(hidden_size, grid, base_size=grid)" in code
    assert 'self.register_buffer("pos", pos.float())' in code
    # reference classes gone, with the helper only the replaced function used; imports follow
    assert "class TimestepEmbedder" not in code and "class Mlp" not in code and "def helper" not in code
    assert out.removed == ["helper"]
    assert "class Block" in code and "class Model" in code
    assert "from diffusers.models.embeddings import TimestepEmbedding, Timesteps, get_2d_sincos_pos_embed" in code
    assert "from diffusers.models.attention import FeedForward" in code
    assert "import math" not in code and "import numpy" not in code


def test_inside_a_diffusers_checkout_imports_are_relative():
    out = substitute(PORT, [plan("feed-forward", "Mlp", MLP, {"dim": "{in_features}", "inner_dim": "{hidden_features}"})], [], relative="..")
    assert "from ..attention import FeedForward" in out.code


def test_a_block_name_still_held_by_the_port_is_imported_under_an_alias():
    source = PORT.replace("class Block(", "class FeedForward(nn.Module):\n    pass\n\n\nclass Block(")
    source = source.replace("        return self.mlp(x)\n", "        return self.mlp(x) + FeedForward()(x)\n", 1)
    out = substitute(source, [plan("feed-forward", "Mlp", MLP, {"dim": "{in_features}", "inner_dim": "{hidden_features}"})], [])
    assert "from diffusers.models.attention import FeedForward as DiffusersFeedForward" in out.code
    assert "self.mlp = DiffusersFeedForward(hidden_size" in out.code and "class FeedForward(nn.Module)" in out.code


@pytest.mark.parametrize(("edit", "reason"), [
    # the instance's insides are reached from outside: a rewrite would break that code
    (("c = self.t_embedder(t)", "c = self.t_embedder(t) + self.t_embedder.mlp[0].bias"), "used other than by calling it"),
    # a default the constructor computes from another argument: the block's setting has no single source
    (("self.t_embedder = TimestepEmbedder(hidden_size)", "self.t_embedder = TimestepEmbedder(hidden_size, *sizes)"), "*args"),
    # kept in a container: no place for the extra module (Timesteps) the block needs beside each instance
    (("self.t_embedder = TimestepEmbedder(hidden_size)", "self.t_embedder = nn.ModuleList([TimestepEmbedder(hidden_size)])"), "sit in the module list"),
])
def test_what_cannot_be_written_everywhere_stays_with_its_reason(edit, reason):
    source = PORT.replace(*edit)
    out = substitute(source, [
        plan("timestep-embedding", "TimestepEmbedder", TIMESTEP, {"in_channels": "{frequency_embedding_size}", "time_embed_dim": "{hidden_size}"}),
        plan("feed-forward", "Mlp", MLP, {"dim": "{in_features}", "inner_dim": "{hidden_features}"}),
    ], [])
    assert "TimestepEmbedder" in out.failed and reason in out.failed["TimestepEmbedder"]
    assert out.applied == ["Mlp"]  # the others still apply
    assert "class TimestepEmbedder" in out.code and "TimestepEmbedding" not in out.code


def test_code_that_dispatches_on_the_type_dispatches_on_the_block_too():
    source = PORT.replace("class Mlp(nn.Module):", "class Layer(nn.Module):\n    pass\n\n\nclass Mlp(Layer):")
    source = source.replace("        return self.mlp(x)\n", "        return self.mlp(x) if isinstance(self.mlp, Layer) else x\n", 1)
    source = source.replace("            x = block(x) + c[:, None]", "            x = block(x) if isinstance(block.mlp, Mlp) else x")
    out = substitute(source, [plan("feed-forward", "Mlp", MLP, {"dim": "{in_features}", "inner_dim": "{hidden_features}"})], [])
    assert out.applied == ["Mlp"], out.failed
    assert "isinstance(self.mlp, (Layer, FeedForward))" in out.code  # a base of the replaced class: widened
    assert "isinstance(block.mlp, FeedForward)" in out.code  # the replaced class itself: the block
    assert "class Layer" in out.code and "class Mlp" not in out.code


def test_numpy_result_used_as_numpy_keeps_numpy():
    source = PORT.replace('self.register_buffer("pos", torch.from_numpy(pos).float())', 'self.register_buffer("pos", torch.from_numpy(pos * 2).float())')
    out = substitute(source, [], [sincos()])
    assert "pos = get_2d_sincos_pos_embed(hidden_size, grid, base_size=grid).numpy()" in out.code


def test_expressions_over_constructor_arguments():
    args = [{"dim": 64, "num_heads": 4, "qkv_bias": True, "out_bias_flag": False}, {"dim": 96, "num_heads": 4, "qkv_bias": True, "out_bias_flag": False}]
    assert express("query_dim", [64, 96], args) == "{dim}"
    assert express("dim_head", [16, 24], args) == "{dim} // {num_heads}"
    assert express("heads", [4, 4], args, ("heads",)) == "{num_heads}"
    # small values (flags, zeros) only follow an argument whose name says so, else a literal
    assert express("bias", [True, True], args, ("bias",)) == "{qkv_bias}"
    assert express("out_bias", [True, True], args) == "True"
    assert express("dropout_prob", [0.0, 0.0], args) == "0.0"
    assert express("width", [7, 9], args) is None  # nothing carries it and it varies


def test_the_constructors_own_formula_wins_over_a_coincidence():
    source = "class FinalLayer:\n    def __init__(self, hidden_size, patch_size, out_channels):\n        self.linear = Linear(hidden_size, patch_size * patch_size * out_channels)\n"
    args = [{"hidden_size": 64, "patch_size": 2, "out_channels": 4}]
    sourced = init_expressions(source, "FinalLayer")
    assert express("out_features", [16], args, (), sourced) == "{patch_size} * {patch_size} * {out_channels}"
    assert express("out_features", [16], args) == "{hidden_size} // {out_channels}"  # what values alone would guess


def test_a_forged_proof_is_refused():
    entry = {"name": "Mlp", "module": "m", "instances": [{"name": "mlp", "parameters": 10, "calls": 1, "init_args": {}}], "tries": []}
    for accepted in (
        {"family": "no-such-family", "choice": {}, "dims": {"mlp": {}}, "max_abs": 0.0},
        {"family": "feed-forward", "choice": {**MLP, "activation_fn": "__import__('os')"}, "dims": {"mlp": {}}, "max_abs": 0.0},
        {"family": "feed-forward", "choice": MLP, "dims": {"mlp": {}}, "max_abs": 0.5},  # not within the tolerance
        {"family": "feed-forward", "choice": MLP, "dims": {"other": {}}, "max_abs": 0.0},
    ):
        with pytest.raises(Malformed):
            decide({"classes": [{**entry, "accepted": accepted}], "functions": []}, 1e-5, {}, set())


def test_a_constructor_setting_the_proof_never_saw_is_not_written():
    """An argument the block has no setting for was proven at one value; an instantiation that
    passes another literal value (a branch the seeded run never took) would be a silent change."""
    source = PORT.replace("def __init__(self, in_features, hidden_features):", "def __init__(self, in_features, hidden_features, act=\"gelu\"):")
    mlp = plan("feed-forward", "Mlp", MLP, {"dim": "{in_features}", "inner_dim": "{hidden_features}"})
    mlp.frozen = {"act": "gelu"}
    assert substitute(source, [mlp], []).applied == ["Mlp"]
    other = source.replace("Mlp(hidden_size, int(hidden_size * mlp_ratio))", 'Mlp(hidden_size, int(hidden_size * mlp_ratio), act="relu")')
    out = substitute(other, [mlp], [])
    assert "act=\"relu\", which no proven instance had ('gelu')" in out.failed["Mlp"]


def test_written_constructors_drop_what_a_literal_made_moot():
    code = BY_NAME["resnet-block-2d"].code({"non_linearity": "swish", "shortcut_bias": True, "groups_out": False})
    text = code.main.format(in_channels="ch", out_channels="None", temb_channels="emb", groups="32", eps="1e-05", dropout="0.0",
                            scale_shift="False", up="False", down="down")
    assert tidy(text, code.defaults) == "ResnetBlock2D(in_channels=ch, out_channels=None, temb_channels=emb, groups=32, eps=1e-05, down=down)"
    text = code.main.format(in_channels="ch", out_channels="None", temb_channels="emb", groups="32", eps="1e-05", dropout="dropout",
                            scale_shift="use_scale_shift_norm", up="False", down="False")
    assert 'time_embedding_norm="scale_shift" if use_scale_shift_norm else "default"' in tidy(text, code.defaults)


def test_report_names_classes_that_went_with_the_block_holding_them():
    from agent.porting.blocks.decide import ClassDecision
    from agent.stages.blocks import _report

    block = ClassDecision("DoubleBlock", "DoubleBlock", 100, ["blocks.0", "blocks.1"], {"blocks.0": 50, "blocks.1": 50},
                          block="FluxTransformerBlock", family="x")
    inner = ClassDecision("QKNorm", "QKNorm", 8, ["blocks.0.norm", "blocks.1.norm"], reason="no block family fits")
    elsewhere = ClassDecision("QKNorm2", "QKNorm2", 8, ["blocks.0.norm2", "final.norm"], reason="no block family fits")
    report = _report([block, inner, elsewhere], [], {"DoubleBlock"}, {}, {}, {"parameters": 120})
    assert [r["reference_class"] for r in report["substituted"]] == ["DoubleBlock"]
    assert report["inside"] == [{"reference_class": "QKNorm", "port_class": "QKNorm", "instances": 2, "parameters": 8,
                                 "inside": ["FluxTransformerBlock"]}]
    assert [r["reference_class"] for r in report["custom"]] == ["QKNorm2"]  # one instance still lives outside the block
