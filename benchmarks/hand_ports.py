"""Port models that diffusers already integrated by hand, and set each port beside diffusers' class.

    python benchmarks/hand_ports.py [NAME ...] [--tree CHECKOUT] [--work DIR] [--timeout S] [--json OUT] [--markdown OUT]

For each model: the ORIGINAL code from a pinned PyPI wheel (unmodified, RECORD-checked, laid out
by benchmarks/corpus/build.py's helpers), a tiny config, seeded weights made in the sandbox from
the reference model itself; then `integrate FOLDER --llm none` offline (the entry's inputs passed
with --inputs). Beside it, diffusers' hand port: the class diffusers ships, its config and its
weights obtained with diffusers' OWN conversion function (diffusers.loaders.single_file_utils)
applied to the same reference state dict. One sandboxed job then loads both (the port is
generated code, so it never runs outside the sandbox), runs them on the same inputs and lists,
for every parameter, the classes that own it. This process compares:

- parameters in diffusers blocks: share of the port's parameters owned (innermost) by a class
  defined in diffusers, other than the top-level model class;
- same block as the hand port: share of the port's parameters whose innermost diffusers class is
  the one that holds the same values in diffusers' class (values matched row by row, so a fused
  qkv on one side and split q, k, v on the other still correspond);
- config names in common, forward arguments, output type, lines of the model file, findings of
  `integrate check` on the port's file and on diffusers' file, and parity (max abs) of the port
  against diffusers' class on the converted weights.

The issue's goal (issue 14, item 8): >= 90% of parameters in the same blocks as the hand port,
the same forward signature and output type. The table says where a model falls short.
--tree measures another checkout of the tool (default: this one).
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from corpus.build import BuildError, fetch_wheel, lay_out  # noqa: E402
from corpus.entries import BY_NAME, Entry  # noqa: E402
from real_models import run_integrate, stage_result, write_inputs_file  # noqa: E402

import sandbox  # noqa: E402

GOAL_SAME_BLOCKS = 0.90
SEED = 0

FLUX_WHEEL = dict(
    package="fluxbfl",
    version="0.0.3",
    wheel_sha256="29c648eb9be3fbec23ce00a0517573aef18b4c8b6b00c573caaac3a90918c1be",
    license="Apache-2.0",
    license_files=("fluxbfl-0.0.3.dist-info/licenses/LICENSE",),
    homepage="https://github.com/black-forest-labs/flux",
)


@dataclass(frozen=True)
class HandPort:
    """A reference model and diffusers' hand port of it, with the correspondence between them."""

    entry: Entry
    diffusers_class: str
    config_object: bool  # the reference constructor takes one config object (a dataclass read by attribute)
    diffusers_config: Callable[[dict, dict], dict]  # (reference config, reference state dict) -> diffusers config
    convert: Callable[[dict, dict], dict]  # (reference state dict, diffusers config) -> diffusers state dict
    diffusers_inputs: str  # source of to_diffusers(kw): the reference's inputs as diffusers' class takes them
    conversion: str  # what converted the weights, for the table's notes
    given_inputs: bool = True  # pass the entry's inputs(seed) to integrate as --inputs (else it works them out)


# ---------------------------------------------------------------- latent-diffusion UNet


def ldm_unet_config(config: dict, state: dict) -> dict:
    from diffusers.loaders.single_file_utils import create_unet_diffusers_config_from_ldm

    original = {"model": {"params": {
        "unet_config": {"params": {k: v for k, v in config.items() if k != "architectures"}},
        "first_stage_config": {"params": {"ddconfig": {"ch_mult": [1]}}},  # only read for sample_size
    }}}
    diffusers_config = create_unet_diffusers_config_from_ldm(original, state)
    diffusers_config["sample_size"] = config["image_size"]
    return diffusers_config


def ldm_unet_convert(state: dict, diffusers_config: dict) -> dict:
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    return convert_ldm_unet_checkpoint({f"model.diffusion_model.{k}": v for k, v in state.items()}, diffusers_config)


# ---------------------------------------------------------------- FLUX.1 transformer


FLUX_CONFIG = {
    "in_channels": 16, "out_channels": 16, "vec_in_dim": 24, "context_in_dim": 32, "hidden_size": 64,
    "mlp_ratio": 4.0, "num_heads": 2, "depth": 1, "depth_single_blocks": 1, "axes_dim": [8, 12, 12],
    "theta": 10000, "qkv_bias": True, "guidance_embed": False,
}

FLUX_INPUTS = """
def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    h, w, n_txt = 4, 4, 6
    grid = torch.zeros(h, w, 3)
    grid[..., 1] = torch.arange(h)[:, None]
    grid[..., 2] = torch.arange(w)[None, :]
    return {"img": torch.randn(2, h * w, 16, generator=g), "img_ids": grid.reshape(1, h * w, 3).repeat(2, 1, 1),
            "txt": torch.randn(2, n_txt, 32, generator=g), "txt_ids": torch.zeros(2, n_txt, 3),
            "timesteps": torch.rand(2, generator=g), "y": torch.randn(2, 24, generator=g)}
"""


def flux_config(config: dict, state: dict) -> dict:
    head_dim = config["hidden_size"] // config["num_heads"]
    return {
        "patch_size": 1, "in_channels": config["in_channels"], "out_channels": config["out_channels"],
        "num_layers": config["depth"], "num_single_layers": config["depth_single_blocks"],
        "attention_head_dim": head_dim, "num_attention_heads": config["num_heads"],
        "joint_attention_dim": config["context_in_dim"], "pooled_projection_dim": config["vec_in_dim"],
        "guidance_embeds": config["guidance_embed"], "axes_dims_rope": list(config["axes_dim"]),
    }


def flux_convert(state: dict, diffusers_config: dict) -> dict:
    """diffusers' own convert_flux_transformer_checkpoint_to_diffusers, with the one constant it
    hard-codes for FLUX.1-dev (`inner_dim = 3072`, the width it splits the fused qkv at) set to the
    tiny model's width; every other line is diffusers'."""
    from diffusers.loaders import single_file_utils

    source = textwrap.dedent(inspect.getsource(single_file_utils.convert_flux_transformer_checkpoint_to_diffusers))
    if source.count("inner_dim = 3072") != 1:
        raise BuildError("diffusers' Flux conversion no longer hard-codes inner_dim = 3072: update the benchmark")
    width = diffusers_config["attention_head_dim"] * diffusers_config["num_attention_heads"]
    scope = dict(vars(single_file_utils))
    exec(compile(source.replace("inner_dim = 3072", f"inner_dim = {width}"), "<diffusers flux conversion>", "exec"), scope)
    return scope["convert_flux_transformer_checkpoint_to_diffusers"](dict(state))


# ---------------------------------------------------------------- FLUX.1 autoencoder


FLUX_VAE_CONFIG = {
    "resolution": 16, "in_channels": 3, "ch": 32, "out_ch": 3, "ch_mult": [1, 2], "num_res_blocks": 1,
    "z_channels": 4, "scale_factor": 0.3611, "shift_factor": 0.1159,
}


def flux_vae_config(config: dict, state: dict) -> dict:
    from diffusers.loaders.single_file_utils import create_vae_diffusers_config_from_ldm

    ddconfig = {k: config[k] for k in ("in_channels", "ch", "out_ch", "ch_mult", "num_res_blocks", "z_channels")}
    original = {"model": {"params": {"first_stage_config": {"params": {"ddconfig": ddconfig}}, "scale_factor": config["scale_factor"]}}}
    diffusers_config = create_vae_diffusers_config_from_ldm(original, state, scaling_factor=config["scale_factor"])
    # FLUX.1's autoencoder has no quant convs and shifts its latents: diffusers' FLUX.1 vae/config.json says so too.
    return diffusers_config | {"sample_size": config["resolution"], "use_quant_conv": False, "use_post_quant_conv": False,
                               "shift_factor": config["shift_factor"]}


def flux_vae_convert(state: dict, diffusers_config: dict) -> dict:
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    return convert_ldm_vae_checkpoint(dict(state), diffusers_config)


MODELS: dict[str, HandPort] = {
    "ldm-unet": HandPort(
        entry=BY_NAME["ldm-unet"],
        diffusers_class="UNet2DConditionModel",
        config_object=False,
        diffusers_config=ldm_unet_config,
        convert=ldm_unet_convert,
        diffusers_inputs="""
def to_diffusers(kw):
    return {"sample": kw["x"], "timestep": kw["timesteps"], "encoder_hidden_states": kw["context"]}
""",
        conversion="create_unet_diffusers_config_from_ldm + convert_ldm_unet_checkpoint",
        # integrate works out x, timesteps and context itself. With --inputs, the conventions branch's verify
        # stage stops on KeyError 'name' (an inputs file's entries have no name): reported, not worked around.
        given_inputs=False,
    ),
    "flux": HandPort(
        entry=Entry(
            name="flux", family="MMDiT (double + single stream, RoPE)",
            summary="FLUX.1's Flux transformer, Black Forest Labs' inference code (the flux repo as the fluxbfl wheel)",
            **FLUX_WHEEL,
            files=("fluxbfl/__init__.py", "fluxbfl/_version.py", "fluxbfl/math.py", "fluxbfl/model.py",
                   "fluxbfl/modules/layers.py", "fluxbfl/modules/lora.py"),
            module="fluxbfl.model", cls="Flux", config=FLUX_CONFIG, inputs=FLUX_INPUTS,
        ),
        diffusers_class="FluxTransformer2DModel",
        config_object=True,
        diffusers_config=flux_config,
        convert=flux_convert,
        diffusers_inputs="""
def to_diffusers(kw):
    return {"hidden_states": kw["img"], "encoder_hidden_states": kw["txt"], "pooled_projections": kw["y"],
            "timestep": kw["timesteps"], "img_ids": kw["img_ids"][0], "txt_ids": kw["txt_ids"][0]}
""",
        conversion="convert_flux_transformer_checkpoint_to_diffusers (its hard-coded inner_dim=3072 set to 64)",
    ),
    "flux-vae": HandPort(
        entry=Entry(
            name="flux-vae", family="KL autoencoder",
            summary="FLUX.1's AutoEncoder (KL VAE), Black Forest Labs' inference code (fluxbfl wheel)",
            **FLUX_WHEEL,
            files=("fluxbfl/__init__.py", "fluxbfl/_version.py", "fluxbfl/modules/autoencoder.py"),
            module="fluxbfl.modules.autoencoder", cls="AutoEncoder", config=FLUX_VAE_CONFIG,
            inputs="""
def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(2, 3, 16, 16, generator=g)}
""",
        ),
        diffusers_class="AutoencoderKL",
        config_object=True,
        diffusers_config=flux_vae_config,
        convert=flux_vae_convert,
        diffusers_inputs="""
def to_diffusers(kw):
    return {"sample": kw["x"], "sample_posterior": False}
""",
        conversion="create_vae_diffusers_config_from_ldm + convert_ldm_vae_checkpoint (no quant convs, shift_factor)",
        given_inputs=False,  # integrate works out the image batch itself (see ldm-unet for why not --inputs)
    ),
}


# ---------------------------------------------------------------- sandboxed jobs

WEIGHTS_JOB = r'''
"""Seeded weights from the reference model itself: its own initialisation plus noise on every
parameter (so zero-initialised layers matter); runs in the sandbox, it imports reference code."""
import importlib, inspect, json, sys, torch
from types import SimpleNamespace
from safetensors.torch import save_file
job = json.load(open(sys.argv[1]))
sys.path.insert(0, job["folder"])
config = {k: v for k, v in json.load(open(job["folder"] + "/config.json")).items() if k != "architectures"}
cls = getattr(importlib.import_module(job["module"]), job["cls"])
torch.manual_seed(job["seed"])
if job["config_object"]:
    model = cls(SimpleNamespace(**config))
else:
    defaults = {p.name: p.default for p in inspect.signature(cls).parameters.values()}
    model = cls(**{k: tuple(v) if isinstance(v, list) and isinstance(defaults.get(k), tuple) else v for k, v in config.items()})
g = torch.Generator().manual_seed(job["seed"] + 1)
state = {k: (v + 0.05 * torch.randn(v.shape, generator=g)).contiguous() if v.is_floating_point() else v.contiguous()
         for k, v in model.state_dict().items()}
save_file(state, "model.safetensors")
print(len(state), "tensors")
'''

COMPARE_JOB = r'''
"""Load the port (generated code) and diffusers' class, run both on the same inputs, describe both."""
import importlib, inspect, json, sys, torch
import diffusers
from safetensors.torch import load_file, save_file
job = json.load(open(sys.argv[1]))
torch.set_grad_enabled(False)
scope = {"torch": torch}
exec(job["inputs"], scope)
exec(job["to_diffusers"], scope)

def owners(model):
    """parameter name -> the classes that own it, outermost first (the top-level model left out)."""
    modules = dict(model.named_modules())
    out = {}
    for name, p in model.named_parameters():
        parts = name.split(".")[:-1]
        chain = [modules[".".join(parts[:i])] for i in range(1, len(parts) + 1)]
        out[name] = {"numel": p.numel(), "chain": [[type(m).__module__, type(m).__qualname__] for m in chain]}
    return out

def signature(model):
    params = inspect.signature(type(model).forward).parameters.values()
    return [p.name + ("=" if p.default is not inspect.Parameter.empty else "") for p in params
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

def first_tensor(out):
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        return out[0]
    return out.sample if hasattr(out, "sample") else out[0]

report = {}
sys.path.insert(0, job["port_dir"])
port_cls = getattr(importlib.import_module(job["port_module"]), job["port_class"])
port = port_cls.from_pretrained(job["port_weights"]).eval()
hand_cls = getattr(diffusers, job["diffusers_class"])
hand = hand_cls(**json.load(open(job["diffusers_config"]))).eval()
missing, unexpected = hand.load_state_dict(load_file(job["diffusers_weights"]), strict=False)
report["diffusers_load"] = {"missing": list(missing), "unexpected": list(unexpected)}
for side, model in (("port", port), ("hand", hand)):
    report[side] = {"owners": owners(model), "forward": signature(model),
                    "config": {k: v for k, v in json.loads(json.dumps(dict(model.config), default=str)).items() if not k.startswith("_")},
                    "file": inspect.getsourcefile(type(model)), "class_module": type(model).__module__}
outputs = {}
for seed in job["seeds"]:
    kw = scope["inputs"](seed)
    port_out = port(**{job["renames"].get(k, k): v for k, v in kw.items()})
    hand_out = hand(**scope["to_diffusers"](kw))
    report.setdefault("output_type", {"port": type(port_out).__name__, "hand": type(hand_out).__name__})
    outputs[f"port_{seed}"] = first_tensor(port_out).contiguous()
    outputs[f"hand_{seed}"] = first_tensor(hand_out).contiguous()
save_file(outputs, "outputs.safetensors")
json.dump(report, open("report.json", "w"))
print("compared")
'''


# ---------------------------------------------------------------- building and running


def build_folder(hp: HandPort, work: Path) -> Path:
    """The reference laid out like a Hub repo (upstream files unmodified) with seeded weights."""
    entry = hp.entry
    dest = work / "models" / entry.name
    lay_out(entry, fetch_wheel(entry, work), dest)
    jobdir = work / "jobs" / f"weights-{entry.name}"
    shutil.rmtree(jobdir, ignore_errors=True)
    jobdir.mkdir(parents=True)
    (jobdir / "weights.py").write_text(WEIGHTS_JOB)
    (jobdir / "job.json").write_text(json.dumps({"folder": str(dest), "module": entry.module, "cls": entry.cls,
                                                 "config_object": hp.config_object, "seed": SEED}))
    res = sandbox.run([sys.executable, "weights.py", "job.json"], jobdir, ro_paths=[dest], limits=sandbox.Limits(wall_s=300))
    if not res.ok:
        raise BuildError(f"weights: {res.one_line_error()}")
    shutil.copy(jobdir / "model.safetensors", dest / "model.safetensors")
    return dest


def row_index(state: dict) -> tuple[dict, dict]:
    """Rows (slices along dim 0) of every 2-D+ tensor by content hash; 1-D tensors by 4-value windows."""
    import torch

    rows, windows = {}, {}
    for key, t in state.items():
        t = t.detach().to(torch.float32).contiguous()
        if t.dim() >= 2:
            for row in t.reshape(t.shape[0], -1):
                rows.setdefault(hashlib.sha1(row.numpy().tobytes()).digest(), key)
        else:
            flat = t.numpy()  # a tensor shorter than a window is indexed whole
            for i in range(max(len(flat) - 3, 1)):
                windows.setdefault(flat[i:i + 4].tobytes(), (key, i))
    return rows, windows


def counterparts(port_state: dict, hand_state: dict) -> dict[str, dict[str, int]]:
    """port parameter -> {diffusers parameter: number of values they share}, by content."""
    import torch

    rows, windows = row_index(hand_state)
    found: dict[str, dict[str, int]] = {}
    for key, t in port_state.items():
        t = t.detach().to(torch.float32).contiguous()
        hits: dict[str, int] = {}
        if t.dim() >= 2:
            flat = t.reshape(t.shape[0], -1)
            for row in flat:
                other = rows.get(hashlib.sha1(row.numpy().tobytes()).digest())
                if other is not None:
                    hits[other] = hits.get(other, 0) + row.numel()
        else:
            p, i = t.numpy(), 0
            while i < len(p):
                at = windows.get(p[i:i + 4].tobytes())
                if at is None:
                    i += 1
                    continue
                other, j = at
                h = hand_state[other].detach().to(torch.float32).numpy()
                n = 0
                while i + n < len(p) and j + n < len(h) and p[i + n] == h[j + n]:
                    n += 1
                hits[other] = hits.get(other, 0) + n
                i += max(n, 1)
        found[key] = hits
    return found


def innermost_diffusers(chain: list[list[str]]) -> str | None:
    for module, name in reversed(chain):
        if module.startswith("diffusers."):
            return name
    return None


def innermost_own(chain: list[list[str]]) -> str:
    """The port's own (non-torch, non-diffusers) class nearest the parameter, or the model itself."""
    for module, name in reversed(chain):
        if not module.startswith(("torch.", "diffusers.")):
            return name
    return "model"


def block_comparison(report: dict, port_state: dict, hand_state: dict) -> dict:
    """Where each port parameter lives next to where diffusers' hand port keeps the same values."""
    port_owner, hand_owner = report["port"]["owners"], report["hand"]["owners"]
    total = sum(o["numel"] for o in port_owner.values())
    in_blocks = same = unmatched = 0
    pairs: dict[tuple[str, str], int] = {}
    matches = counterparts({k: port_state[k] for k in port_owner}, {k: hand_state[k] for k in hand_owner if k in hand_state})
    for key, owner in port_owner.items():
        mine = innermost_diffusers(owner["chain"])
        if mine is not None:
            in_blocks += owner["numel"]
        hits = matches.get(key, {})
        unmatched += owner["numel"] - sum(hits.values())
        for other, n in hits.items():
            theirs = innermost_diffusers(hand_owner[other]["chain"])
            # Agreement: the same diffusers block, or no block on either side (a plain layer of the model).
            if mine == theirs:
                same += n
            pair = (mine or f"custom {innermost_own(owner['chain'])}", theirs or "plain layer of the model")
            pairs[pair] = pairs.get(pair, 0) + n
    hand_total = sum(o["numel"] for o in hand_owner.values())
    hand_in_blocks = sum(o["numel"] for o in hand_owner.values() if innermost_diffusers(o["chain"]))
    return {
        "port_parameters": total, "hand_parameters": hand_total,
        "in_diffusers_blocks": in_blocks / total, "hand_in_diffusers_blocks": hand_in_blocks / hand_total,
        "same_block_as_hand": same / total, "without_counterpart": unmatched / total,
        "pairs": sorted(([a, b, n] for (a, b), n in pairs.items()), key=lambda x: -x[2]),
    }


def forward_verdict(port: list[str], hand: list[str]) -> str:
    """'same' (equal argument lists), 'subset' (every port argument is diffusers', in diffusers' order), else 'differs'."""
    names_p, names_h = [a.rstrip("=") for a in port], [a.rstrip("=") for a in hand]
    if names_p == names_h:
        return "same"
    if all(n in names_h for n in names_p) and [n for n in names_h if n in names_p] == names_p:
        return "subset"
    return "differs"


def same_value(a: Any, b: Any) -> bool:
    """Config values compared as JSON gives them back (a tuple and a list of the same items are equal)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def code_lines(path: Path) -> int:
    """Non-blank lines that are not comment-only."""
    return sum(1 for line in path.read_text().splitlines() if line.strip() and not line.strip().startswith("#"))


def check_findings(path: Path, tree: Path) -> dict[str, int] | str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "agent.cli", "check", str(path), "--format", "json", "--no-cache"],
                          capture_output=True, text=True, env=env, cwd=tree)
    if proc.returncode not in (0, 1):
        return f"could not run: {(proc.stderr.strip().splitlines() or ['?'])[-1]}"
    counts: dict[str, int] = {}
    for f in json.loads(proc.stdout or "[]"):
        counts[f["rule"]] = counts.get(f["rule"], 0) + 1
    return dict(sorted(counts.items()))


def compare(hp: HandPort, folder: Path, summary: dict, scratch: Path) -> dict:
    """Diffusers' class beside the port: conversion here (diffusers' code, trusted), running in the sandbox."""
    import torch
    from safetensors.torch import load_file, save_file

    entry = hp.entry
    out_dir = (scratch / "out" / folder.name).resolve()
    reference = load_file(str(folder / "model.safetensors"))
    config = json.loads((folder / "config.json").read_text())
    diffusers_config = hp.diffusers_config(config, reference)
    hand_state = hp.convert({k: v.clone() for k, v in reference.items()}, diffusers_config)
    jobdir = scratch / "jobs" / f"compare-{entry.name}"
    shutil.rmtree(jobdir, ignore_errors=True)
    jobdir.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in hand_state.items()}, str(jobdir / "hand.safetensors"))
    (jobdir / "hand_config.json").write_text(json.dumps(diffusers_config, default=list))
    conventions = stage_result(summary, "conventions")
    model_file = Path(stage_result(summary, "scaffold")["model_file"])
    port_config = json.loads((out_dir / "weights" / "config.json").read_text())
    job = {
        "port_dir": str(out_dir), "port_module": model_file.stem, "port_class": port_config["_class_name"],
        "port_weights": str(out_dir / "weights"), "diffusers_class": hp.diffusers_class,
        "diffusers_config": str(jobdir / "hand_config.json"), "diffusers_weights": str(jobdir / "hand.safetensors"),
        "inputs": entry.inputs, "to_diffusers": hp.diffusers_inputs, "renames": conventions.get("forward_renames") or {},
        "seeds": [0, 1],
    }
    (jobdir / "compare.py").write_text(COMPARE_JOB)
    (jobdir / "job.json").write_text(json.dumps(job))
    res = sandbox.run([sys.executable, "compare.py", "job.json"], jobdir, ro_paths=[out_dir], limits=sandbox.Limits(wall_s=600))
    if not res.ok:
        return {"error": f"comparison job: {res.one_line_error()}"}
    report = json.loads((jobdir / "report.json").read_text())
    outputs = load_file(str(jobdir / "outputs.safetensors"))
    diffs, cosines = [], []
    for seed in job["seeds"]:
        a, b = outputs[f"port_{seed}"].double(), outputs[f"hand_{seed}"].double()
        if a.shape != b.shape:
            diffs.append(float("inf"))
            continue
        diffs.append(float((a - b).abs().max()))
        cosines.append(float(torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0)))
    port_state = load_file(str(out_dir / "weights" / "diffusion_pytorch_model.safetensors"))
    port_cfg, hand_cfg = report["port"]["config"], report["hand"]["config"]
    common = sorted(set(port_cfg) & set(hand_cfg))
    return {
        "blocks": block_comparison(report, port_state, hand_state),
        "config": {"common": common, "same_value": [k for k in common if same_value(port_cfg[k], hand_cfg[k])],
                   "port_only": sorted(set(port_cfg) - set(hand_cfg)), "hand_only": sorted(set(hand_cfg) - set(port_cfg))},
        "forward": {"port": report["port"]["forward"], "hand": report["hand"]["forward"],
                    "verdict": forward_verdict(report["port"]["forward"], report["hand"]["forward"])},
        "output_type": report["output_type"],
        "lines": {"port": code_lines(model_file), "hand": code_lines(Path(report["hand"]["file"])), "hand_file": report["hand"]["file"]},
        "diffusers_load": report["diffusers_load"],
        "parity": {"max_abs_diff": max(diffs), "cosine": min(cosines) if cosines else None, "passed": max(diffs) <= 1e-5},
        "hand_file": report["hand"]["file"], "model_file": str(model_file),
    }


def measure(name: str, work: Path, scratch: Path, timeout: float, tree: Path) -> dict:
    hp = MODELS[name]
    row: dict[str, Any] = {"model": name, "source": f"{hp.entry.package}=={hp.entry.version} {hp.entry.module}.{hp.entry.cls}",
                           "diffusers_class": hp.diffusers_class, "conversion": hp.conversion}
    try:
        folder = build_folder(hp, work)
    except BuildError as exc:
        return row | {"error": f"build: {exc}"}
    scratch.mkdir(parents=True, exist_ok=True)
    inputs_file = write_inputs_file(hp.entry, scratch) if hp.given_inputs else None
    summary, err, seconds, _ = run_integrate(folder, scratch, timeout, tree, inputs_file)
    row["seconds"] = round(seconds, 1)
    if summary is None:
        return row | {"error": f"integrate: {err.strip()[:300]}"}
    row |= {"status": summary["status"], "stage_reached": summary["stage_reached"], "run_dir": summary["run_dir"]}
    if summary["status"] != "passed":
        return row | {"error": f"integrate: {(summary.get('error') or '').strip()[:300]}"}
    stages = summary["stages"]
    row["stages"] = sorted(stages)
    blocks = stage_result(summary, "blocks")
    row["blocks_stage"] = {"status": blocks.get("status"), "share": blocks.get("share"),
                           "custom": [{"class": c["reference_class"], "parameters": c["parameters"], "reason": c["reason"]}
                                      for c in blocks.get("custom", [])]} if blocks else None
    row["port_class"] = stage_result(summary, "plan").get("class_name")
    row |= compare(hp, folder, summary, scratch)
    if "error" not in row:
        row["checks"] = {"port": check_findings(Path(row["model_file"]), tree), "hand": check_findings(Path(row["hand_file"]), tree)}
    return row


# ---------------------------------------------------------------- reporting


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def findings_text(counts: dict | str) -> str:
    if isinstance(counts, str):
        return counts
    return f"{sum(counts.values())}" + (f" ({', '.join(f'{k}×{v}' for k, v in counts.items())})" if counts else "")


def table(rows: list[dict]) -> str:
    head = ["model (original → diffusers)", "params in diffusers blocks (port / hand)", "same block as hand port",
            "config names in common", "forward", "output type (port / hand)", "model-file lines (port / hand)",
            "check findings (port / hand)", "port vs diffusers (max abs)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        title = f"{r['model']}: {r['source'].split()[1]} → {r['diffusers_class']}"
        if r.get("error"):
            lines.append(f"| {title} | " + " | ".join(["-"] * (len(head) - 2)) + f" | {r['error']} |")
            continue
        b, c, f = r["blocks"], r["config"], r["forward"]
        n_port = len(c["common"]) + len(c["port_only"])
        goal = "" if b["same_block_as_hand"] >= GOAL_SAME_BLOCKS else " (goal 90%)"
        p = r["parity"]
        lines.append(
            f"| {title} | {pct(b['in_diffusers_blocks'])} / {pct(b['hand_in_diffusers_blocks'])} | {pct(b['same_block_as_hand'])}{goal} "
            f"| {len(c['common'])} of the port's {n_port} ({len(c['same_value'])} with diffusers' value) | {f['verdict']} | {r['output_type']['port']} / {r['output_type']['hand']} "
            f"| {r['lines']['port']} / {r['lines']['hand']} | {findings_text(r['checks']['port'])} / {findings_text(r['checks']['hand'])} "
            f"| {'equal' if p['passed'] else 'DIFFERENT'} {p['max_abs_diff']:.1e} |")
    return "\n".join(lines)


def details(rows: list[dict]) -> str:
    out = []
    for r in rows:
        out.append(f"### {r['model']}\n")
        out.append(f"- original: `{r['source']}`; hand port: `diffusers.{r['diffusers_class']}`; weights converted with {r['conversion']}")
        if r.get("error"):
            out.append(f"- not measured: {r['error']}\n")
            continue
        out.append(f"- port: `{r['port_class']}`, integrate {r['status']} in {r['seconds']:.0f} s; stages {', '.join(r['stages'])}")
        bs = r.get("blocks_stage")
        if bs and bs.get("share"):
            out.append(f"- blocks stage: {bs['status']}, its own count {pct(bs['share']['diffusers_share'])} in diffusers blocks; custom: "
                       + "; ".join(f"{c['class']} ({c['parameters']} params: {c['reason']})" for c in bs["custom"]))
        elif not bs:
            out.append("- blocks stage: not in this checkout")
        out.append("- where the port's parameters live → where diffusers keeps the same values (parameters):")
        for mine, theirs, n in r["blocks"]["pairs"][:12]:
            out.append(f"  - {mine} → {theirs}: {n}")
        if r["blocks"]["without_counterpart"]:
            out.append(f"  - without a counterpart in diffusers' state dict: {pct(r['blocks']['without_counterpart'])}")
        c = r["config"]
        differ = [k for k in c["common"] if k not in c["same_value"]]
        out.append(f"- config in common: {', '.join(c['common']) or 'none'} (value differs from diffusers': {', '.join(differ) or 'none'}); "
                   f"port only: {', '.join(c['port_only']) or 'none'}")
        out.append(f"- forward: port `({', '.join(r['forward']['port'])})`; diffusers `({', '.join(r['forward']['hand'])})`")
        load = r["diffusers_load"]
        if load["missing"] or load["unexpected"]:
            out.append(f"- diffusers' conversion left {len(load['missing'])} missing and {len(load['unexpected'])} unexpected keys")
        out.append("")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"models to measure: {', '.join(MODELS)} (default: all)")
    parser.add_argument("--tree", type=Path, default=ROOT, help="checkout of the tool to measure (default: this one)")
    parser.add_argument("--work", type=Path, help="folder for wheels, models and runs (default: a temporary one)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per integrate run")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--markdown", help="write the table and the details here")
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in MODELS]
    if unknown:
        print(f"error: unknown model {', '.join(unknown)} (choose from {', '.join(MODELS)})", file=sys.stderr)
        return 2
    work = (args.work or Path(tempfile.mkdtemp(prefix="integrate-handports-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for name in args.names or list(MODELS):
            rows.append(measure(name, work, work / "scratch", args.timeout, args.tree.resolve()))
            print(f"{name}: done" + (f" ({rows[-1]['error']})" if rows[-1].get("error") else ""), file=sys.stderr)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=str))
    if args.markdown:
        Path(args.markdown).write_text(table(rows) + "\n\n" + details(rows))
    return 0 if rows and all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
