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
    assert reasons == {8: "non-literal pattern", 9: reasons[9]}
    assert "two unknown sizes" in reasons[9]
    assert "RearrangeLayer1()(y)" in r.code  # the layer class is translated
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
    out, renamed = capture_config(textwrap.dedent("""
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
    assert renamed == {}


def test_config_capture_keeps_reference_attributes_that_clash_with_mixins():
    out, renamed = capture_config(textwrap.dedent("""
        import torch
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self, use_fp16=False, mults=(1, 2)):
                super().__init__()
                self.dtype = torch.float16 if use_fp16 else torch.float32
                self.mults = mults

            def forward(self, x):
                return x.type(self.dtype)
    """), "Net", "NetModel", in_tree=False, tuple_args={"mults"})
    assert renamed == {"dtype": "reference_dtype"}
    assert "self.reference_dtype = " in out and "x.type(self.reference_dtype)" in out
    assert "mults = tuple(mults) if isinstance(mults, list) else mults" in out
    ns = {}
    exec(out, ns)
    model = ns["NetModel"](mults=[1, 2])  # as from_pretrained would pass it
    assert model.mults == (1, 2) and model.config.mults == [1, 2] and model.reference_dtype == torch.float32


def test_einops_layers_become_exact_modules():
    src = textwrap.dedent("""
        import torch
        from torch import nn
        from einops import pack
        from einops.layers.torch import Rearrange, Reduce

        class M(nn.Module):
            def __init__(self, p):
                super().__init__()
                self.a = nn.Sequential(Rearrange("b c (h p1) (w p2) -> b (c p1 p2) h w", p1=p, p2=p), nn.Conv2d(12, 4, 1))
                self.pool = Reduce("b c h w -> b c", "mean")

            def forward(self, x):
                packed, _ = pack([x], "b *")
                return self.pool(self.a(x))
    """)
    r = port_codemods(src, DISPATCH)
    assert "einops.layers" not in r.code and "RearrangeLayer1(p1=p, p2=p)" in r.code and "ReduceLayer2()" in r.code
    assert [item.what for item in r.left] == ["einops.pack"]  # reported, not silently kept
    ref_ns, new_ns = {}, {}
    exec(src, ref_ns)
    exec(r.code, new_ns)
    torch.manual_seed(0)
    ref = ref_ns["M"](2)
    new = new_ns["M"](2)
    assert list(ref.state_dict()) == list(new.state_dict())
    new.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(ref(x), new(x))


def test_rewrites_need_evidence_that_parity_runs_them_and_attention_needs_4d():
    from agent.porting.codemods import CallEvidence

    src = """
        import torch.nn.functional as F
        from einops import rearrange

        def f(q, k, v, flag):
            a = F.scaled_dot_product_attention(q, k, v)
            if flag:
                a = rearrange(a, "b h n d -> b n (h d)")
            return a + F.scaled_dot_product_attention(q, k, v)
    """
    evidence = CallEvidence(executed={5, 6, 7, 9}, attention_ranks={6: [4], 9: [6]})
    r = port_codemods(textwrap.dedent(src), DISPATCH, evidence)
    assert [c["line"] for c in r.converted] == [6]
    reasons = {item.line: item.reason for item in r.left}
    assert "not executed" in reasons[8] and "6-D" in reasons[9]
    assert "from einops import rearrange" in r.code and r.code.count("scaled_dot_product_attention(") == 1
    without = port_codemods(textwrap.dedent(src), DISPATCH)  # no record (a unit use): everything translatable is rewritten
    assert sorted(c["line"] for c in without.converted) == [6, 8, 9]


def test_top_class_over_a_reference_module_keeps_it_first_and_names_its_kwargs():
    src = textwrap.dedent("""
        import torch
        from torch import nn

        class Base(nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.lin = nn.Linear(dim, dim)
                self.config = {"dim": dim}

        class Net(Base):
            def __init__(self, dim=4, **kwargs):
                super().__init__(dim)
                self.scale = kwargs["scale"]

            def forward(self, x):
                return self.lin(x) * self.scale
    """)
    out, renamed = capture_config(src, "Net", "NetModel", in_tree=False, defaults={"scale": 2.0},
                                  module_bases={"Base", "Net"}, passthrough={"param": "kwargs", "keys": ["scale"]})
    assert "class NetModel(Base, ModelMixin, ConfigMixin):" in out
    assert "def __init__(self, dim=4, scale=2.0):" in out and "kwargs = dict(scale=scale)" in out
    assert renamed == {"config": "reference_config"} and "self.reference_config = {" in out  # in the base too
    ns = {}
    exec(out, ns)
    model = ns["NetModel"](dim=4)  # super().__init__(dim) reaches Base, Base's super() reaches ModelMixin
    assert model.scale == 2.0 and model.config.scale == 2.0 and model.reference_config == {"dim": 4}
    assert model(torch.ones(1, 4)).shape == (1, 4)


def test_only_torchs_attention_is_rewritten_not_a_function_of_the_same_name():
    r = mods("""
        import torch
        from torch import nn
        from torch.nn import functional as Fn
        from torch.nn.functional import scaled_dot_product_attention as sdpa

        def scaled_dot_product_attention(q, k, v):
            return Fn.scaled_dot_product_attention(q, k, v)

        def f(q, k, v, attn):
            a = scaled_dot_product_attention(q, k, v)  # the module's own function
            b = attn.scaled_dot_product_attention(q, k, v)  # some object's method
            return a + b + sdpa(q, k, v) + nn.functional.scaled_dot_product_attention(q, k, v) + torch.nn.functional.scaled_dot_product_attention(q, k, v)
    """)
    assert [c["line"] for c in r.converted] == [8, 13, 13, 13]
    assert "a = scaled_dot_product_attention(q, k, v)" in r.code and "attn.scaled_dot_product_attention(q, k, v)" in r.code


def test_environment_reads_become_the_default_the_sandboxed_reference_used():
    r = mods("""
        import os
        import os as system

        PRECISION = os.environ.get("ATTN_PRECISION", "fp32")
        CHUNK = system.getenv("CHUNK", 4)
        NAME = os.environ.get(PRECISION, "x")
        MISSING = os.environ.get("NO_DEFAULT")
    """)
    assert 'PRECISION = "fp32"' in r.code and "CHUNK = 4" in r.code
    assert [c["from"] for c in r.converted] == ["environment variable ATTN_PRECISION", "environment variable CHUNK"]
    assert [item.what for item in r.left] == ["environment read", "environment read"]  # non-literal name, no default
    assert "import os\n" in r.code and "import os as system" not in r.code


def test_import_time_compilation_and_compiler_settings_are_left_out():
    r = mods("""
        import torch
        import torch._dynamo
        from torch import compile as compiled

        try:
            torch._dynamo.config.cache_size_limit = 5000
            fast_silu = torch.compile(torch.nn.functional.silu, dynamic=False)
        except Exception:
            fast_silu = torch.nn.functional.silu

        if FLAG:
            torch._dynamo.config.suppress_errors = True

        @torch.compile(mode="max-autotune")
        def g(x):
            return torch.compile(x)

        h = compiled(g)
    """)
    assert "_dynamo" not in r.code and "FLAG" not in r.code and "@" not in r.code
    assert "fast_silu = torch.nn.functional.silu\nexcept" in r.code.replace("    ", "")
    assert "return x" in r.code  # inside a function too: it would compile on the first call
    assert "h = g" in r.code
    assert sorted(c["line"] for c in r.converted) == [7, 8, 13, 15, 17, 19]  # the source starts with a blank line
    ns: dict = {"FLAG": True}
    exec(compile(r.code, "port", "exec"), ns)  # the port imports cleanly and keeps every name
    assert ns["h"] is ns["g"] and ns["fast_silu"] is torch.nn.functional.silu
