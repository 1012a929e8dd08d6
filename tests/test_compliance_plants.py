"""The compliance suite on small synthetic ports: a clean one that follows the model contract
(return_dict + output dataclass, an encoder attention mask, gradient checkpointing, attention
through dispatch_attention_fn) passes every check, and each planted defect is caught by
exactly the check made for it, with the evidence that names it. Each port runs in the sandbox
through the same job as a real run."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from agent.compliance import compliance_job

CLEAN = '''
from dataclasses import dataclass

import torch
import torch.nn as nn
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput


@dataclass
class SynthOutput(BaseOutput):
    sample: torch.Tensor


class SynthAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.to_q, self.to_k, self.to_v, self.to_out = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x, context, bias=None):
        q = self.to_q(x).unflatten(-1, (self.heads, -1))
        k = self.to_k(context).unflatten(-1, (self.heads, -1))
        v = self.to_v(context).unflatten(-1, (self.heads, -1))
        return self.to_out(dispatch_attention_fn(q, k, v, attn_mask=bias).flatten(2))


class SynthBlock(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn1, self.attn2 = SynthAttention(dim, heads), SynthAttention(dim, heads)
        self.ff = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, x, context, bias):
        h = self.norm1(x)
        x = x + self.attn1(h, h)
        x = x + self.attn2(self.norm2(x), context, bias)
        return x + self.ff(x)


class SynthTransformer(ModelMixin, ConfigMixin):
    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(self, in_channels=8, dim=32, heads=2, num_layers=2, context_dim=16):
        super().__init__()
        self.proj_in = nn.Linear(in_channels, dim)
        self.time_proj = nn.Linear(1, dim)
        self.context_proj = nn.Linear(context_dim, dim)
        self.blocks = nn.ModuleList([SynthBlock(dim, heads) for _ in range(num_layers)])
        self.proj_out = nn.Linear(dim, in_channels)
        self.gradient_checkpointing = False
        # PLANT: init

    def forward(self, hidden_states, timestep, encoder_hidden_states, encoder_attention_mask=None, return_dict=True):
        x = self.proj_in(hidden_states) + self.time_proj(timestep[:, None, None].to(hidden_states.dtype) / 1000)
        # PLANT: tokens
        context = self.context_proj(encoder_hidden_states)
        bias = None
        if encoder_attention_mask is not None:
            bias = (1 - encoder_attention_mask.to(x.dtype)) * -10000.0
            bias = bias[:, None, None, :]
        for block in self.blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                x = self._gradient_checkpointing_func(block, x, context, bias)
            else:
                x = block(x, context, bias)
        # PLANT: output
        out = self.proj_out(x)
        if not return_dict:
            return (out,)
        return SynthOutput(sample=out)
'''

SPEC = '''
import torch

tolerance = {"max_abs": 1e-5, "cosine": 0.99999}


def reference():
    raise NotImplementedError("the compliance suite uses only inputs()")


candidate = reference


def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    kwargs = {
        "hidden_states": torch.randn(2, 6, 8, generator=g),
        "timestep": torch.rand(2, generator=g) * 1000,
        "encoder_hidden_states": torch.randn(2, 5, 16, generator=g),
    }
    return {"reference": kwargs, "candidate": dict(kwargs)}
'''

# Each plant: (replacements in the clean source, the one check that must catch it, words its
# finding must contain).
PLANTS = {
    "batch_mix": (
        {"# PLANT: tokens": "x = x - x.mean(dim=0, keepdim=True)  # normalised over the batch"},
        "batch_independence", ["sample", "output.sample"],
    ),
    "mask_ignored": (
        {"bias = bias[:, None, None, :]": "bias = None  # the mask is dropped"},
        "attention_mask", ["encoder_attention_mask is not honoured", "encoder_hidden_states"],
    ),
    "checkpoint_skips_block": (
        {"x = self._gradient_checkpointing_func(block, x, context, bias)":
            "if block is self.blocks[0]:\n                    continue\n"
            "                x = self._gradient_checkpointing_func(block, x, context, bias)"},
        "gradient_checkpointing", ["blocks.0."],
    ),
    "fp16_overflow": (
        {"# PLANT: tokens": "x = x * 1e5  # a large constant", "# PLANT: output": "x = x / 1e5"},
        "fp16_finite", ["float16 forward is not finite", "output.sample"],
    ),
    "backend_pinned": (
        {"import dispatch_attention_fn": "import AttentionBackendName, dispatch_attention_fn",
         "dispatch_attention_fn(q, k, v, attn_mask=bias)": "dispatch_attention_fn(q, k, v, attn_mask=bias, backend=AttentionBackendName.NATIVE)"},
        "attention_backends", ["selecting _native_math changed nothing: the attention calls went to native"],
    ),
    "buffer_lost_on_load": (
        {"# PLANT: init": 'self.register_buffer("gain", torch.zeros(dim), persistent=False)\n        nn.init.constant_(self.gain, 1.0)',
         "# PLANT: tokens": "x = x * self.gain"},
        "save_load", ["from_pretrained of the converted folder", "non-persistent buffers not rebuilt the same: gain"],
    ),
    "random_buffer": (
        {"# PLANT: init": 'self.register_buffer("phase", torch.randn(dim), persistent=False)',
         "# PLANT: tokens": "x = x + self.phase"},
        "save_load", ["phase"],
    ),
}
SKIP_COMPILE = {"torch_compile": "measured on the bundled example (tests/test_compliance_example.py); too slow to repeat per plant"}


def write_port(folder: Path, name: str, replacements: dict[str, str], spec: str = SPEC) -> tuple[Path, str, Path]:
    """The port source in `folder/<name>.py`, its converted weights folder and the spec."""
    source = CLEAN
    for old, new in replacements.items():
        assert old in source, old
        source = source.replace(old, new)
    folder.mkdir(parents=True)
    module = f"synth_{name}"
    (folder / f"{module}.py").write_text(textwrap.dedent(source))
    (folder / "spec.py").write_text(spec)
    loader = importlib.util.spec_from_file_location(module, folder / f"{module}.py")
    mod = importlib.util.module_from_spec(loader)
    sys.modules[module] = mod  # dataclasses look their module up while the class is built
    try:
        loader.loader.exec_module(mod)
        torch.manual_seed(0)
        mod.SynthTransformer().save_pretrained(folder / "weights")
    finally:
        del sys.modules[module]
    return folder / "weights", module, folder / "spec.py"


def run_suite(tmp: Path, name: str, replacements: dict[str, str], only: list[str] | None = None, spec: str = SPEC) -> dict:
    weights, module, spec = write_port(tmp / name, name, replacements, spec)
    return compliance_job(tmp / name, module, "SynthTransformer", None, weights, spec,
                          workdir=tmp / f"{name}-job", skip=None if only else SKIP_COMPILE, only=only)


def statuses(result: dict) -> dict[str, str]:
    return {r["check"]: r["status"] for r in result["checks"]}


@pytest.fixture(scope="module")
def clean_result(tmp_path_factory) -> dict:
    return run_suite(tmp_path_factory.mktemp("compliance-clean"), "clean", {})


def test_clean_port_passes_every_check(clean_result):
    got = statuses(clean_result)
    assert got == {
        "save_load": "passed", "return_dict": "passed", "fp16_finite": "passed", "bf16_finite": "passed",
        "batch_independence": "passed", "attention_mask": "passed", "gradient_checkpointing": "passed",
        "attention_backends": "passed", "torch_compile": "skipped",
    }, [(r["check"], r["summary"]) for r in clean_result["checks"]]
    assert clean_result["findings"] == [] and clean_result["passed"]
    rows = {r["check"]: r for r in clean_result["checks"]}
    # skipped on request is reported as such, with the reason, never as passed
    assert rows["torch_compile"]["summary"].startswith("skipped on request: measured on the bundled example")
    # the checkpointing branch really ran: one checkpointed call per block
    assert rows["gradient_checkpointing"]["evidence"]["checkpointed_calls"] == 2
    # the mask check masked the encoder tokens and saw the token matter when unmasked
    mask = rows["attention_mask"]["evidence"]["masks"][0]
    assert mask["masks_tokens_of"] == "encoder_hidden_states" and mask["leak_when_masked"]["max_abs_diff"] == 0.0
    assert mask["change_when_unmasked"]["max_abs_diff"] > 1e-3
    # backends: native and at least one other really computed the attention
    ran = rows["attention_backends"]["evidence"]["ran"]
    assert ran[0] == "native" and len(ran) >= 2


@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_planted_defect_is_caught_by_its_check_only(plant, tmp_path):
    replacements, expected, words = PLANTS[plant]
    result = run_suite(tmp_path, plant, replacements)
    failed = [r["check"] for r in result["checks"] if r["status"] == "failed"]
    assert failed == [expected], [(r["check"], r["status"], r["summary"]) for r in result["checks"]]
    finding = result["findings"][0]
    assert finding["rule"] == f"compliance/{expected}" and not result["passed"]
    for word in words:
        assert word in finding["message"], finding["message"]


def test_a_port_that_kills_the_suite_fails_the_check_in_flight(tmp_path):
    """The port ends its own process in the float16 forward: the checks before it keep their
    results, the float16 check fails with how the process ended, the rest are not reached."""
    kill = {"# PLANT: tokens": "if x.dtype == torch.float16:\n            import os\n            os._exit(3)"}
    result = run_suite(tmp_path, "kills", kill)
    got = statuses(result)
    assert got["save_load"] == got["return_dict"] == "passed"
    rows = {r["check"]: r for r in result["checks"]}
    assert got["fp16_finite"] == "failed"
    assert rows["fp16_finite"]["summary"] == "the suite's process exited with code 3 while this check ran"
    later = [c for c in got if c not in ("save_load", "return_dict", "fp16_finite")]
    assert later and all(got[c] == "skipped" and rows[c]["summary"].startswith("not reached") for c in later)
    assert [f["check"] for f in result["findings"]] == ["fp16_finite"]


def test_a_port_that_cannot_be_imported_is_a_one_line_error(tmp_path):
    from agent.errors import IntegrateError

    weights, _, spec = write_port(tmp_path / "port", "importable", {})
    with pytest.raises(IntegrateError, match=r"^the compliance suite could not run: ModuleNotFoundError: No module named 'no_such_module'$"):
        compliance_job(tmp_path / "port", "no_such_module", "SynthTransformer", None, weights, spec, workdir=tmp_path / "job")


def test_unknown_check_names_are_refused_before_anything_runs(tmp_path):
    from agent.errors import IntegrateError

    with pytest.raises(IntegrateError, match=r"^unknown compliance checks: torch_compil \(known: save_load, "):
        compliance_job(tmp_path, "m", "C", None, None, tmp_path / "spec.py", workdir=tmp_path / "job", skip={"torch_compil": "typo"})
    assert not (tmp_path / "job").exists()


SELF_MASK = {
    "encoder_attention_mask=None, return_dict=True": "encoder_attention_mask=None, attention_mask=None, return_dict=True",
    "def forward(self, x, context, bias):": "def forward(self, x, context, bias, self_bias=None):",
    "x = x + self.attn1(h, h)": "x = x + self.attn1(h, h, self_bias)",
    "x = self._gradient_checkpointing_func(block, x, context, bias)": "x = self._gradient_checkpointing_func(block, x, context, bias, self_bias)",
    "x = block(x, context, bias)": "x = block(x, context, bias, self_bias)",
    "# PLANT: tokens": "self_bias = None if attention_mask is None else ((1 - attention_mask.to(x.dtype)) * -10000.0)[:, None, None, :]",
}


@pytest.mark.parametrize("honoured", [True, False], ids=["honoured", "ignored"])
def test_a_self_attention_mask_is_judged_on_the_other_tokens(honoured, tmp_path):
    """`attention_mask` over the port's own tokens: the masked token's own output may change,
    the other tokens' may not."""
    replacements = dict(SELF_MASK)
    if not honoured:
        replacements["x = x + self.attn1(h, h)"] = "x = x + self.attn1(h, h)  # self_bias dropped"
    result = run_suite(tmp_path, f"self_mask_{honoured}", replacements, only=["attention_mask"])
    masks = {m["mask"]: m for m in result["checks"][0]["evidence"]["masks"]}
    self_mask = masks["attention_mask"]
    assert self_mask["masks_tokens_of"] == "hidden_states" and self_mask["self_attention_mask"] is True
    assert masks["encoder_attention_mask"]["status"] == "passed"
    if honoured:
        assert self_mask["status"] == "passed" and self_mask["leak_when_masked"]["max_abs_diff"] == 0.0
        assert result["checks"][0]["status"] == "passed"
    else:
        assert self_mask["status"] == "failed" and "attention_mask is not honoured" in self_mask["reason"]
        assert result["checks"][0]["status"] == "failed"


def test_a_mask_the_spec_passes_keeps_its_additive_form(tmp_path):
    """The spec feeds an additive float mask (0 keeps, -10000 drops) that the port adds to the
    scores as it is: the check masks with the same form, and the mask is honoured."""
    spec = SPEC.replace(
        '"encoder_hidden_states": torch.randn(2, 5, 16, generator=g),',
        '"encoder_hidden_states": torch.randn(2, 5, 16, generator=g),\n'
        '        "encoder_attention_mask": torch.where(torch.rand(2, 5, generator=g) < 0.8, 0.0, -10000.0),',
    )
    additive = {"bias = (1 - encoder_attention_mask.to(x.dtype)) * -10000.0": "bias = encoder_attention_mask.to(x.dtype)"}
    result = run_suite(tmp_path, "additive", additive, only=["attention_mask"], spec=spec)
    row = result["checks"][0]
    mask = row["evidence"]["masks"][0]
    assert row["status"] == "passed", row["summary"]
    assert mask["mask_dtype"] == "float32" and mask["masks_tokens_of"] == "encoder_hidden_states"
    assert mask["rejected_mask_dtypes"] == []
