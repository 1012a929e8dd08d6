"""Block families and codemod paths for an autoencoder's and a latent-diffusion UNet's shapes, on a
planted reference: a residual block without a timestep projection kept in module lists (its call
sites found from where the traced instances sit, called with `temb=None`), a single-head spatial
attention over pixels with 1x1-convolution projections (diffusers' `Attention` as AutoencoderKL's
mid-block has it, the convolution weights reshaped by the mapping engine), and an attention built
through a class table (the name becomes a function of the same signature building the block; a
sibling class in the table keeps working because the call is written positionally). The proof
runs in the sandbox, the codemod writes the blocks, and full-model parity of the rewritten file
against the reference decides, as in the blocks stage."""

import textwrap

import pytest
from block_proofs import run_proof

from agent.parity_run import run_parity_sandboxed
from agent.porting.blocks import BY_NAME
from agent.porting.blocks.decide import decide, module_tree
from agent.porting.substitute import ClassPlan, substitute
from sandbox.parity.host import SidePaths

PLANTED = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


def swish(x):
    return x * torch.sigmoid(x)


def timestep_embedding(t, dim):
    freqs = torch.exp(-torch.log(torch.tensor(10000.0)) * torch.arange(dim // 2, dtype=torch.float32) / (dim // 2))
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ResnetBlock(nn.Module):
    def __init__(self, in_channels, out_channels=None):
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1 = nn.GroupNorm(num_groups=8, num_channels=in_channels, eps=1e-6, affine=True)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        self.norm2 = nn.GroupNorm(num_groups=8, num_channels=out_channels, eps=1e-6, affine=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=1, padding=0)

    def forward(self, x):
        h = self.conv1(swish(self.norm1(x)))
        h = self.conv2(swish(self.norm2(h)))
        if self.in_channels != self.out_channels:
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    def __init__(self, in_channels):
        super().__init__()
        self.norm = nn.GroupNorm(num_groups=8, num_channels=in_channels, eps=1e-6, affine=True)
        self.q = nn.Conv2d(in_channels, in_channels, kernel_size=1)
        self.k = nn.Conv2d(in_channels, in_channels, kernel_size=1)
        self.v = nn.Conv2d(in_channels, in_channels, kernel_size=1)
        self.proj_out = nn.Conv2d(in_channels, in_channels, kernel_size=1)

    def forward(self, x):
        h = self.norm(x)
        q, k, v = self.q(h), self.k(h), self.v(h)
        b, c, height, width = q.shape
        q, k, v = (t.flatten(2).transpose(1, 2)[:, None] for t in (q, k, v))
        h = F.scaled_dot_product_attention(q, k, v)[:, 0].transpose(1, 2).reshape(b, c, height, width)
        return x + self.proj_out(h)


class CrossAttention(nn.Module):
    def __init__(self, query_dim, context_dim=None, heads=2, dim_head=8, dropout=0.0):
        super().__init__()
        inner = heads * dim_head
        context_dim = query_dim if context_dim is None else context_dim
        self.heads = heads
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim), nn.Dropout(dropout))

    def forward(self, x, context=None, mask=None):
        context = x if context is None else context
        q, k, v = (f(y).unflatten(-1, (self.heads, -1)).transpose(1, 2) for f, y in ((self.to_q, x), (self.to_k, context), (self.to_v, context)))
        attn = (q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5).softmax(dim=-1)
        return self.to_out((attn @ v).transpose(1, 2).flatten(2))


class FastCrossAttention(nn.Module):
    """What the table picks where a faster kernel is installed (never here): the same signature."""

    def __init__(self, query_dim, context_dim=None, heads=2, dim_head=8, dropout=0.0):
        super().__init__()
        self.proj = nn.Linear(query_dim, query_dim)

    def forward(self, x, context=None, mask=None):
        return self.proj(x)


class Block(nn.Module):
    MODES = {"plain": CrossAttention, "fast": FastCrossAttention}

    def __init__(self, dim, context_dim, fast=False):
        super().__init__()
        attn_cls = self.MODES["fast" if fast else "plain"]
        self.attn1 = attn_cls(query_dim=dim, heads=2, dim_head=dim // 2)
        self.attn2 = attn_cls(query_dim=dim, context_dim=context_dim, heads=2, dim_head=dim // 2)

    def forward(self, x, context=None):
        x = self.attn1(x) + x
        return self.attn2(x, context=context) + x


class Model(nn.Module):
    def __init__(self, ch=16, ch_mult=(1, 2), context_dim=8):
        super().__init__()
        self.conv_in = nn.Conv2d(3, ch, kernel_size=3, padding=1)
        self.down = nn.ModuleList()
        block_in = ch
        for mult in ch_mult:
            level = nn.Module()
            level.block = nn.ModuleList([ResnetBlock(in_channels=block_in, out_channels=ch * mult)])
            block_in = ch * mult
            self.down.append(level)
        self.mid = nn.Module()
        self.mid.attn_1 = AttnBlock(block_in)
        self.mid.block_1 = ResnetBlock(block_in, block_in)
        self.block = Block(block_in, context_dim)
        self.model_channels = ch
        time_embed_dim = ch * 4
        # an MLP on sinusoids (a timestep embedding) and one on learned features (a feed-forward)
        self.time_embed = nn.Sequential(nn.Linear(ch, time_embed_dim), nn.SiLU(), nn.Linear(time_embed_dim, time_embed_dim))
        self.emb_proj = nn.Linear(time_embed_dim, block_in)
        self.head = nn.Sequential(nn.Linear(block_in, block_in), nn.SiLU(), nn.Linear(block_in, block_in))

    def forward(self, x, t, context):
        emb = self.time_embed(timestep_embedding(t, self.model_channels))
        h = self.conv_in(x)
        for i in range(len(self.down)):
            h = self.down[i].block[0](h)
        h = self.mid.block_1(self.mid.attn_1(h)) + self.emb_proj(emb)[:, :, None, None]
        b, c, height, width = h.shape
        tokens = self.head(self.block(h.flatten(2).transpose(1, 2), context))
        return tokens.transpose(1, 2).reshape(b, c, height, width)
'''

SPEC = '''
import importlib
import sys

import torch

tolerance = {{"max_abs": 1e-5, "cosine": 0.99999}}


def _weights(model):
    g = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) / (p[0].numel() ** 0.5 if p.dim() >= 2 else 10.0))
    return model


def reference():
    sys.path.insert(0, {root!r})
    return _weights(importlib.import_module("planted").Model())


def candidate():
    sys.path.insert(0, {candidate!r})
    return importlib.import_module("rewritten").Model()


def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    kw = {{"x": torch.randn(2, 3, 8, 8, generator=g), "t": torch.rand(2, generator=g) * 1000, "context": torch.randn(2, 5, 8, generator=g)}}
    return {{"reference": kw, "candidate": dict(kw)}}
'''


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The proof on the planted reference, and the decisions made from it on the host."""
    root = tmp_path_factory.mktemp("planted")
    (root / "planted.py").write_text(PLANTED)
    candidate = tmp_path_factory.mktemp("candidate")
    spec_dir = tmp_path_factory.mktemp("spec")
    (spec_dir / "spec.py").write_text(textwrap.dedent(SPEC.format(root=str(root), candidate=str(candidate))))
    result = run_proof(root, spec_dir / "spec.py", tmp_path_factory.mktemp("job"))
    classes, _ = decide(result, 1e-5, {}, skip={"Model"}, source=PLANTED, top="Model")
    return {"classes": {c.name: c for c in classes}, "tree": module_tree(result, {}, "Model"), "root": root, "candidate": candidate,
            "spec": spec_dir / "spec.py", "work": tmp_path_factory.mktemp("parity")}


def test_autoencoder_shapes_are_proven_as_diffusers_blocks(planted):
    found = planted["classes"]
    res = found["ResnetBlock"]  # no timestep projection: temb_channels=None, called with temb=None
    assert res.family == "resnet-block-2d" and res.choice["temb"] is False and res.max_abs <= 1e-5
    assert res.exprs["in_channels"] == "{in_channels}" and "temb_channels" not in res.exprs
    attn = found["AttnBlock"]  # GroupNorm + 1x1 convolutions + residual: Attention with group norm and residual connection
    assert attn.family == "spatial-attention" and attn.block == "Attention" and attn.max_abs <= 1e-5
    assert attn.exprs["query_dim"] == "{in_channels}" and attn.exprs["dim_head"] == "{in_channels}" and attn.exprs["heads"] == "1"
    cross = found["CrossAttention"]
    assert cross.family == "attention" and cross.choice["context_pos"] == 1
    # plain nn.Sequential attributes of the model: the one fed sinusoids is a TimestepEmbedding, written over the
    # model's own constructor arguments (its formula for the width); the other MLP is a FeedForward
    time = found["Model.time_embed"]
    assert time.container == ("Model", "time_embed") and time.block == "TimestepEmbedding" and time.choice["act_fn"] == "silu"
    assert time.exprs == {"in_channels": "{ch}", "time_embed_dim": "{ch} * 4"}
    assert found["Model.head"].block == "FeedForward"


def test_blocks_are_written_through_containers_and_tables_and_full_parity_holds(planted):
    found = planted["classes"]
    plans = [ClassPlan(name=c.port_name, code=c.code, exprs=c.exprs, init_params=c.init_params, frozen=c.frozen, container=c.container)
             for c in found.values() if c.proven and c.name in ("ResnetBlock", "AttnBlock", "CrossAttention", "Model.time_embed")]
    out = substitute(PLANTED, plans, [], tree=planted["tree"])
    assert sorted(out.applied) == ["AttnBlock", "CrossAttention", "Model.time_embed", "ResnetBlock"], out.failed
    code = out.code
    assert "self.time_embed = TimestepEmbedding(ch, ch * 4)" in code and "emb = self.time_embed(timestep_embedding(" in code
    # resnets in module lists: instantiations rewritten, every call site found from the traced tree gets temb=None
    assert "nn.ModuleList([ResnetBlock2D(in_channels=block_in, out_channels=ch * mult, temb_channels=None" in code
    assert "h = self.down[i].block[0](h, temb=None)" in code and "self.mid.block_1(self.mid.attn_1(h), temb=None)" in code
    assert "class ResnetBlock" not in code and "class AttnBlock" not in code
    assert "self.mid.attn_1 = Attention(block_in, heads=1, dim_head=block_in, eps=1e-06, norm_num_groups=8, residual_connection=True" in code
    # the table keeps building through the name: a function of CrossAttention's signature returns the block, and the
    # call sites pass the reference's arguments by position, which the sibling FastCrossAttention also takes
    assert "def CrossAttention(query_dim, context_dim=None, heads=2, dim_head=8, dropout=0.0):" in code
    assert "return Attention(query_dim, cross_attention_dim=context_dim" in code
    assert 'MODES = {"plain": CrossAttention, "fast": FastCrossAttention}' in code
    assert "return self.attn2(x, context) + x" in code and "x = self.attn1(x) + x" in code
    assert "if dropout != 0.0:" in code  # a constructor argument the block has no setting for is held to the proven value
    (planted["candidate"] / "rewritten.py").write_text(code)
    report = run_parity_sandboxed(planted["spec"], planted["work"], SidePaths(reference=[planted["root"]], candidate=[planted["candidate"]]),
                                  plot=False)
    assert report["passed"], report.get("problems")
    assert report["max_abs_diff"] <= 1e-5


TREE = {"": "Model", "down": "torch.nn.ModuleList", "down.0": "torch.nn.Module", "down.0.block": "torch.nn.ModuleList",
        "down.0.block.0": "ResnetBlock", "mid": "torch.nn.Module", "mid.block_1": "ResnetBlock", "mid.attn_1": "AttnBlock",
        "block": "Block", "block.attn1": "CrossAttention", "block.attn2": "CrossAttention"}
RES = {"non_linearity": "swish", "shortcut_bias": True, "groups_out": False, "temb": False}
RES_EXPRS = {"in_channels": "{in_channels}", "out_channels": "{out_channels}", "groups": "8", "groups_out": "8", "eps": "1e-06",
             "dropout": "0.0", "scale_shift": "False", "up": "False", "down": "False"}


def resnet_plan() -> ClassPlan:
    return ClassPlan("ResnetBlock", BY_NAME["resnet-block-2d"].code(RES), RES_EXPRS)


@pytest.mark.parametrize(("edit", "reason"), [
    # the instance's insides reached from outside: a rewrite would break that code
    (("h = self.mid.block_1(self.mid.attn_1(h))", "h = self.mid.block_1(self.mid.attn_1(h)) + self.mid.block_1.conv1.bias[0]"),
     "reaches it other than by calling it"),
    # one call reaching resnets and other modules alike: the glue cannot be written there
    (("            h = self.down[i].block[0](h)", "            h = self.down[i].block[0](h)\n            h = self.mid[i](h)"), "other modules alike"),
    # called where no expression from self leads (a loop variable): not every call would get the glue
    (("h = self.mid.block_1(self.mid.attn_1(h))", "h = [m for m in self.mid.children()][0](self.mid.attn_1(h))"), "no call of the instance at mid.block_1"),
])
def test_tree_found_call_sites_refuse_what_they_cannot_cover(edit, reason):
    source = PLANTED.replace(*edit)
    out = substitute(source, [resnet_plan()], [], tree=TREE)
    assert "ResnetBlock" in out.failed and reason in out.failed["ResnetBlock"], out.failed
    assert "class ResnetBlock" in out.code


def test_without_the_tree_a_block_kept_in_containers_stays_custom():
    out = substitute(PLANTED, [resnet_plan()], [])
    assert "call sites cannot be found" in out.failed["ResnetBlock"]


def test_a_table_sibling_the_positional_call_cannot_serve_is_refused():
    """When the glue passes an argument at another position than the reference's forward, a
    sibling class in the table would be called wrongly: left custom with the reason."""
    choice = {"rotary": "none", "theta": 10000.0, "qk_norm": "none", "affine": True, "out_bias": True, "out_dim": False,
              "context_pos": 2, "mask_pos": -1}
    source = PLANTED.replace("def forward(self, x, context=None, mask=None):", "def forward(self, x, mask=None, context=None):")
    exprs = {"query_dim": "{query_dim}", "cross_attention_dim": "{context_dim}", "heads": "{heads}", "dim_head": "{dim_head}", "bias": "False"}
    out = substitute(source, [ClassPlan("CrossAttention", BY_NAME["attention"].code(choice), exprs)], [], tree=TREE)
    assert "shares a table with FastCrossAttention" in out.failed["CrossAttention"]
