"""Mutation benchmark for the parity engine.

From correct ports (the bundled TinyDiT example ported by integrate's structural porter, and
three pairs of original latent-diffusion code against diffusers classes) it makes mutants of
the kinds real ports get wrong, runs the parity engine on each, and prints how many were caught
(must be all) and how many have a first_divergence naming the mutated module (target >= 90%).

    python benchmarks/parity_mutants.py [--json OUT]

Needs the ldm package for the pairs: pip install --no-deps stable-diffusion-sdkit==2.1.5
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.porting.codemods import port_codemods  # noqa: E402
from agent.porting.config_capture import capture_config  # noqa: E402
from sandbox.parity import run_parity_in_process as run_parity  # noqa: E402

EXAMPLE = ROOT / "examples" / "tiny-dit"
PAIRS = ROOT / "tests" / "pairs"


@dataclass
class Mutant:
    base: str
    kind: str
    expected: str  # regex the first divergence (candidate or reference module) must match
    old: str = ""  # source mutation of the TinyDiT port: replace old with new
    new: str = ""
    patch: str = ""  # or: code run on `m` (the candidate model) after construction
    convert_patch: str = ""  # or: code run on `out` (the converted state dict)
    drop_input: str = ""  # or: a candidate input removed


TINYDIT = [
    Mutant("tinydit", "norm eps", r"blocks\.0\.norm1", 'self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)', 'self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-4)'),
    Mutant("tinydit", "norm eps", r"blocks\.0\.norm2", 'self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)', 'self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-4)'),
    Mutant("tinydit", "norm eps", r"final_layer\.norm_final", 'self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)', 'self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-4)'),
    Mutant("tinydit", "shift/scale swapped", r"blocks\.0\.attn", "shift_msa, scale_msa, gate_msa, shift_mlp", "scale_msa, shift_msa, gate_msa, shift_mlp"),
    Mutant("tinydit", "shift/scale swapped", r"blocks\.0\.mlp", "gate_msa, shift_mlp, scale_mlp, gate_mlp", "gate_msa, scale_mlp, shift_mlp, gate_mlp"),
    Mutant("tinydit", "shift/scale swapped", r"final_layer\.linear", "shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)", "scale, shift = self.adaLN_modulation(c).chunk(2, dim=1)"),
    Mutant("tinydit", "GELU tanh vs exact", r"blocks\.0\.mlp\.act", 'nn.GELU(approximate="tanh")', "nn.GELU()"),
    Mutant("tinydit", "RoPE interleaved vs split-half", r"blocks\.0\.attn",
           "x_ = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))\n    return torch.view_as_real(x_ * freqs_cis).flatten(3).type_as(x)",
           "half = x.shape[-1] // 2\n    x_ = torch.complex(x[..., :half].float(), x[..., half:].float())\n    out = x_ * freqs_cis\n    return torch.cat([out.real, out.imag], dim=-1).type_as(x)"),
    Mutant("tinydit", "qkv chunk order", r"blocks\.0\.attn", "q, k, v = qkv.unflatten", "k, q, v = qkv.unflatten"),
    Mutant("tinydit", "qkv fused layout", r"blocks\.0\.attn", "qkv.unflatten(2, (3, self.num_heads, -1)).permute(2, 0, 3, 1, 4)", "qkv.unflatten(2, (self.num_heads, 3, -1)).permute(3, 0, 2, 1, 4)"),
    Mutant("tinydit", "attention scale", r"blocks\.0\.attn", "v.transpose(1, 2)).transpose(1, 2)", "v.transpose(1, 2), scale=0.5).transpose(1, 2)"),
    Mutant("tinydit", "missing residual", r"blocks\.0", "x = x + gate_msa.unsqueeze(1) * self.attn(", "x = gate_msa.unsqueeze(1) * self.attn("),
    Mutant("tinydit", "missing residual", r"blocks\.0", "x = x + gate_mlp.unsqueeze(1) * self.mlp(", "x = gate_mlp.unsqueeze(1) * self.mlp("),
    Mutant("tinydit", "missing gate", r"blocks\.0", "x = x + gate_msa.unsqueeze(1) * self.attn(", "x = x + self.attn("),
    Mutant("tinydit", "modulation 1 + scale", r"blocks\.0\.attn", "x * (1 + scale.unsqueeze(1))", "x * scale.unsqueeze(1)"),
    Mutant("tinydit", "timestep flip_sin_to_cos", r"t_embedder", "torch.cat([torch.cos(args), torch.sin(args)], dim=-1)", "torch.cat([torch.sin(args), torch.cos(args)], dim=-1)"),
    Mutant("tinydit", "timestep downscale_freq_shift", r"t_embedder", "dtype=torch.float32, device=t.device) / half", "dtype=torch.float32, device=t.device) / (half - 1)"),
    Mutant("tinydit", "position embedding dropped", r"blocks\.0\.norm1", ".flatten(1, 2) + self.pos_embed", ".flatten(1, 2)"),
    Mutant("tinydit", "transposed weight", r"blocks\.1\.attn\.proj", convert_patch="out['blocks.1.attn.proj.weight'] = out['blocks.1.attn.proj.weight'].t().contiguous()"),
]

UNET_ATTN = "m.down_blocks[0].attentions[0].transformer_blocks[0]"
UNET_KEY = "down_blocks.0.attentions.0.transformer_blocks.0"
UNET = [
    Mutant("ldm_unet", "norm eps", r"down_blocks\.0\.resnets\.0\.norm1", patch="m.down_blocks[0].resnets[0].norm1.eps = 1e-1"),
    Mutant("ldm_unet", "norm eps", r"mid_block\.resnets\.0\.norm2", patch="m.mid_block.resnets[0].norm2.eps = 1e-1"),
    Mutant("ldm_unet", "norm eps", r"transformer_blocks\.0\.norm1", patch=f"{UNET_ATTN}.norm1.eps = 1e-1"),
    Mutant("ldm_unet", "timestep flip_sin_to_cos", r"time", patch="m.time_proj.flip_sin_to_cos = False"),
    Mutant("ldm_unet", "timestep downscale_freq_shift", r"time", patch="m.time_proj.downscale_freq_shift = 1"),
    Mutant("ldm_unet", "qkv chunk order", r"attn1", convert_patch=f"out['{UNET_KEY}.attn1.to_q.weight'], out['{UNET_KEY}.attn1.to_k.weight'] = out['{UNET_KEY}.attn1.to_k.weight'], out['{UNET_KEY}.attn1.to_q.weight']"),
    Mutant("ldm_unet", "transposed weight", r"attn2", convert_patch=f"out['{UNET_KEY}.attn2.to_q.weight'] = out['{UNET_KEY}.attn2.to_q.weight'].t().contiguous()"),
    # AttnProcessor2_0 leaves the scale to SDPA; the classic processor honours attn.scale
    Mutant("ldm_unet", "attention scale", r"attn1", patch=f"from diffusers.models.attention_processor import AttnProcessor\n{UNET_ATTN}.attn1.set_processor(AttnProcessor())\n{UNET_ATTN}.attn1.scale = {UNET_ATTN}.attn1.scale * 2"),
    Mutant("ldm_unet", "GELU tanh vs exact", r"ff", patch=f"import torch.nn.functional as F\n{UNET_ATTN}.ff.net[0].gelu = lambda gate: F.gelu(gate, approximate='tanh')"),
    Mutant("ldm_unet", "residual scale", r"down_blocks\.1\.resnets\.0", patch="m.down_blocks[1].resnets[0].output_scale_factor = 2.0"),
]

VAE_ATTN = "m.encoder.mid_block.attentions[0]"
VAE_KEY = "encoder.mid_block.attentions.0"
VAE = [
    Mutant("ldm_vae", "norm eps", r"encoder\.down_blocks\.0\.resnets\.0\.norm1", patch="m.encoder.down_blocks[0].resnets[0].norm1.eps = 1e-1"),
    Mutant("ldm_vae", "norm eps", r"decoder\.conv_norm_out", patch="m.decoder.conv_norm_out.eps = 1e-1"),
    Mutant("ldm_vae", "qkv chunk order", r"encoder\.mid_block\.attentions\.0", convert_patch=f"out['{VAE_KEY}.to_q.weight'], out['{VAE_KEY}.to_k.weight'] = out['{VAE_KEY}.to_k.weight'], out['{VAE_KEY}.to_q.weight']"),
    Mutant("ldm_vae", "attention scale", r"encoder\.mid_block\.attentions\.0", patch=f"from diffusers.models.attention_processor import AttnProcessor\n{VAE_ATTN}.set_processor(AttnProcessor())\n{VAE_ATTN}.scale = {VAE_ATTN}.scale * 2"),
    Mutant("ldm_vae", "transposed weight", r"encoder\.mid_block\.attentions\.0", convert_patch=f"out['{VAE_KEY}.to_v.weight'] = out['{VAE_KEY}.to_v.weight'].t().contiguous()"),
]

ATTN = [
    Mutant("ldm_cross_attention", "dropped mask", r"attn", drop_input="encoder_attention_mask"),
    Mutant("ldm_cross_attention", "inverted mask", r"attn", patch="_orig_forward = m.forward\nm.forward = lambda hidden_states, encoder_hidden_states, encoder_attention_mask: _orig_forward(hidden_states, encoder_hidden_states, ~encoder_attention_mask)"),
    Mutant("ldm_cross_attention", "qkv chunk order", r"attn", convert_patch="out['attn.to_k.weight'], out['attn.to_v.weight'] = out['attn.to_v.weight'], out['attn.to_k.weight']"),
]

MUTANTS = TINYDIT + UNET + VAE + ATTN


def build_tinydit_port(work: Path) -> str:
    """The example ported by integrate's own structural porter (codemods + config capture)."""
    source = (EXAMPLE / "tiny_dit.py").read_text()
    mods = port_codemods(source, "from diffusers.models.attention_dispatch import dispatch_attention_fn\n")
    code, _renamed = capture_config(mods.code, "TinyDiT", "TinyDiTTransformer2DModel", in_tree=False)
    return code


TINYDIT_SPEC = """
import json, sys
import torch
from safetensors.torch import load_file
sys.path.insert(0, {example!r})
from tiny_dit import TinyDiT
import importlib.util
_spec = importlib.util.spec_from_file_location({modname!r}, {port!r})
_port = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_port)
CONFIG = {{k: v for k, v in json.load(open({config!r})).items() if k not in ("architectures", "model_type")}}
tolerance = {{"max_abs": 1e-5, "cosine": 0.99999}}

def reference():
    m = TinyDiT(**CONFIG)
    m.load_state_dict(load_file({weights!r}))
    return m

def candidate():
    return _port.TinyDiTTransformer2DModel(**CONFIG)

def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    kw = {{"x": torch.randn(2, 4, 16, 16, generator=g), "t": torch.rand(2, generator=g) * 1000, "y": torch.randint(0, 10, (2,), generator=g)}}
    return {{"reference": kw, "candidate": dict(kw)}}

def convert(sd):
    out = dict(sd)
{convert_patch}
    return out
"""

PAIR_SPEC = """
import sys
sys.path.insert(0, {pairs!r})
from {base}_spec import *
import {base}_spec as _base

def candidate():
    m = _base.candidate()
{patch}
    return m

def convert(sd):
    out = _base.convert(sd) if hasattr(_base, "convert") else dict(sd)
{convert_patch}
    return out

def inputs(seed):
    data = _base.inputs(seed)
    {drop}
    return data
"""


def indent(code: str) -> str:
    return textwrap.indent(code or "pass", "    ")


def write_spec(mutant: Mutant, index: int, work: Path, port_source: str) -> Path:
    spec = work / f"spec_{index:02d}.py"
    if mutant.base == "tinydit":
        port = work / f"port_{index:02d}.py"
        if mutant.old:
            if mutant.old not in port_source:
                raise SystemExit(f"mutant {index} ({mutant.kind}): text to mutate not found in the port")
            port.write_text(port_source.replace(mutant.old, mutant.new))
        else:
            port.write_text(port_source)
        spec.write_text(TINYDIT_SPEC.format(
            example=str(EXAMPLE), modname=f"port_{index:02d}", port=str(port), config=str(EXAMPLE / "config.json"),
            weights=str(EXAMPLE / "model.safetensors"), convert_patch=indent(mutant.convert_patch),
        ))
    else:
        drop = f'data["candidate"].pop({mutant.drop_input!r})' if mutant.drop_input else "pass"
        spec.write_text(PAIR_SPEC.format(pairs=str(PAIRS), base=mutant.base, patch=indent(mutant.patch), convert_patch=indent(mutant.convert_patch), drop=drop))
    return spec


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", help="write per-mutant results here")
    args = parser.parse_args()
    try:
        import ldm.modules.diffusionmodules.openaimodel  # noqa: F401
    except ImportError:
        print("error: the ldm package is missing: pip install --no-deps stable-diffusion-sdkit==2.1.5", file=sys.stderr)
        return 2

    rows = []
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        port_source = build_tinydit_port(work)
        # the unmutated bases must pass, or the benchmark means nothing
        for base in ("tinydit", "ldm_unet", "ldm_vae", "ldm_cross_attention"):
            report = run_parity(write_spec(Mutant(base, "none", ""), 99, work, port_source))
            if not report["passed"]:
                print(f"error: base {base} does not pass: {report['problems']}", file=sys.stderr)
                return 2
        for i, mutant in enumerate(MUTANTS):
            report = run_parity(write_spec(mutant, i, work, port_source))
            fd = report["first_divergence"] or {}
            named = bool(fd) and bool(re.search(mutant.expected, f"{fd.get('candidate_module')} {fd.get('reference_module')}"))
            rows.append({
                "base": mutant.base, "kind": mutant.kind, "caught": not report["passed"], "named": named,
                "expected": mutant.expected, "first_divergence": fd or None, "max_abs_diff": report["max_abs_diff"],
            })
            mark = "caught" if not report["passed"] else "MISSED"
            where = f"{fd.get('candidate_module')}" if fd else "-"
            print(f"{i + 1:2d} {mutant.base:<20} {mutant.kind:<32} {mark:<7} first divergence: {where:<55} {'ok' if named else 'NOT the mutated module'}")

    caught = sum(r["caught"] for r in rows)
    named = sum(r["named"] for r in rows)
    print(f"\nmutants: {len(rows)}  caught: {caught}/{len(rows)}  first_divergence names the mutated module: {named}/{len(rows)} ({100 * named / len(rows):.0f}%)  [{time.monotonic() - start:.0f}s]")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=str))
    return 0 if caught == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
