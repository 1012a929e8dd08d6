"""The structural-port codemods: what they rewrite computes the same numbers; what they cannot
rewrite exactly is left in place and reported with its line."""

import textwrap

import torch
import torch.nn.functional as F

from agent.porting.codemods import port_codemods
from agent.porting.config_capture import capture_config

DISPATCH = "from diffusers.models.attention_dispatch import dispatch_attention_fn\n"


def mods(src):
    return port_codemods(textwrap.dedent(src), DISPATCH)


def test_import_styles_and_aliases():
    r = mods("""
        import einops
        import einops as E
        from einops import rearrange as rr, repeat

        def f(x, n):
            a = einops.rearrange(x, "b c -> c b")
            b = E.reduce(x, "b c -> b", "sum")
            c = rr(x, "b c -> (b c)")
            return repeat(a, "c b -> c b k", k=n)
    """)
    assert "einops" not in r.code and len(r.converted) == 4 and r.left == []
    assert "x.permute(1, 0)" in r.code and "x.sum(dim=1)" in r.code and "a.unsqueeze(2).expand(-1, -1, n)" in r.code


def test_untranslatable_calls_stay_and_are_reported():
    r = mods("""
        from einops import rearrange
        from einops.layers.torch import Rearrange

        PATTERN = "b c -> c b"

        def f(x):
            y = rearrange(x, PATTERN)
            z = rearrange(x, "b (h w) -> b h w")
            return Rearrange("b c -> c b")(y), z
    """)
    reasons = {item.line: item.reason for item in r.left}
    assert reasons[8] == "non-literal pattern"
    assert "two unknown sizes" in reasons[9]
    assert "layer" in reasons[10]
    assert "from einops import rearrange" in r.code  # still used, so still imported


def test_sdpa_with_mask_dropout_causal_scale_is_equivalent():
    src = """
        import torch
        import torch.nn.functional as F

        def attend(q, k, v, mask):
            return F.scaled_dot_product_attention(q, k, v, mask, 0.0, scale=0.3)

        def causal(q, k, v):
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    """
    r = mods(src)
    assert "scaled_dot_product_attention" not in r.code and "F" in r.dropped_imports
    assert "attn_mask=mask" in r.code and "dropout_p=0.0" in r.code and "scale=0.3" in r.code and "is_causal=True" in r.code
    ref_ns, new_ns = {}, {}
    exec(textwrap.dedent(src), ref_ns)
    exec(r.code, new_ns)
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=g) for _ in range(3))
    mask = torch.rand(2, 1, 5, 5, generator=g) > 0.3
    mask[..., 0] = True
    assert torch.equal(ref_ns["attend"](q, k, v, mask), new_ns["attend"](q, k, v, mask))
    assert torch.equal(ref_ns["causal"](q, k, v), new_ns["causal"](q, k, v))
    assert F is not None


def test_config_capture_renames_and_decorates():
    out = capture_config(textwrap.dedent("""
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self, dim=4):
                super().__init__()

        def make():
            return Net(dim=8)
    """), "Net", "NetModel", in_tree=False)
    assert "class NetModel(ModelMixin, ConfigMixin):" in out
    assert "@register_to_config\n    def __init__" in out
    assert "return NetModel(dim=8)" in out
    assert "from diffusers.models.modeling_utils import ModelMixin" in out
