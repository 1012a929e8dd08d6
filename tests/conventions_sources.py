"""Shared by the tests/test_conventions_*.py files: a small research-style model written for the
tests (trusted code, run in-process), a way to import generated code, and a way to run a real
integrate flow up to a stage in-process."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import libcst as cst
import torch

from agent.porting.conventions import Target

TOY = textwrap.dedent('''
    import torch
    import torch.nn as nn
    from diffusers.configuration_utils import ConfigMixin, register_to_config
    from diffusers.models.modeling_utils import ModelMixin


    class Attention(nn.Module):
        def __init__(self, dim, num_heads):
            super().__init__()
            self.num_heads = num_heads
            self.qkv = nn.Linear(dim, dim * 3)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            q, k, v = self.qkv(x).unflatten(2, (3, self.num_heads, -1)).permute(2, 0, 3, 1, 4)
            x = torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2)
            x = x.permute(0, 2, 1, 3).transpose(1, 2).flatten(2, 3)
            return self.proj(x)


    class Block(nn.Module):
        def __init__(self, hidden_size, num_heads):
            super().__init__()
            self.norm = nn.LayerNorm(hidden_size)
            self.attn = Attention(hidden_size, num_heads)
            self.adaLN_modulation = nn.Linear(hidden_size, hidden_size)

        def forward(self, x, c, scale=1.0):
            assert x.shape[-1] == c.shape[-1]
            return x + self.attn(self.norm(x)) * self.adaLN_modulation(c)[:, None] * scale


    def unused_helper(x):
        return x * 2


    class ToyModel(ModelMixin, ConfigMixin):
        """A toy DiT.

        Args:
            input_size (int): side of the input.
            depth: how many blocks.
        """

        @register_to_config
        def __init__(self, input_size=8, in_channels=4, hidden_size=32, depth=2, num_heads=4, num_classes=10):
            super().__init__()
            print("building the toy")
            assert hidden_size % num_heads == 0, "heads must divide the width"
            self.depth = depth
            self.proj_in = nn.Linear(in_channels, hidden_size)
            self.t_embedder = nn.Linear(1, hidden_size)
            self.y_embedder = nn.Embedding(num_classes, hidden_size)
            self.blocks = nn.ModuleList([Block(hidden_size, num_heads) for _ in range(depth)])
            self.norm_out = nn.LayerNorm(hidden_size)
            self.proj_out = nn.Linear(hidden_size, in_channels)

        def forward(self, x, t, y):
            assert x.ndim == 4
            h = self.proj_in(x.flatten(2).transpose(1, 2))
            c = self.t_embedder(t[:, None]) + self.y_embedder(y)
            for block in self.blocks:
                h = block(h, c, scale=1.0)
            return self.proj_out(self.norm_out(h)).transpose(1, 2).reshape(x.shape)

        def forward_with_cfg(self, x, t, y, cfg_scale):
            both = self.forward(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, torch.zeros_like(y)]))
            cond, uncond = both.chunk(2)
            return uncond + cfg_scale * (cond - uncond)
''')

TOY_CONFIG = {"input_size": 8, "in_channels": 4, "hidden_size": 32, "depth": 2, "num_heads": 4, "num_classes": 10}
TOY_INPUTS = [
    {"name": "x", "kind": "randn", "shape": [2, 4, 8, 8]},
    {"name": "t", "kind": "uniform", "shape": [2], "low": 0.0, "high": 1000.0},
    {"name": "y", "kind": "randint", "shape": [2], "low": 0, "high": 10},
]


def toy_target(**changes) -> Target:
    fields = {"class_name": "ToyModel", "reference_class": "ToyModel", "family": "transformers", "config": dict(TOY_CONFIG),
              "inputs": list(TOY_INPUTS), "output_paths": ["output"]}
    fields.update(changes)
    return Target(**fields)


def toy_inputs(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(2, 4, 8, 8, generator=g), "t": torch.rand(2, generator=g) * 1000, "y": torch.randint(0, 10, (2,), generator=g)}


_counter = [0]


def load(code: str):
    """Import `code` (test-authored or generated from it) as a fresh module."""
    _counter[0] += 1
    name = f"conventions_generated_{_counter[0]}"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(code, f"<{name}>", "exec"), module.__dict__)
    return module


def parse(code: str) -> cst.Module:
    return cst.parse_module(textwrap.dedent(code))


def run_until(source: Path, out: Path, runs: Path, stop: str, run_id: str = "r"):
    """A real integrate run executed in this process, stage by stage, up to (not including) `stop`."""
    from agent.orchestrator import STAGES
    from agent.run_state import Run

    inputs = {"source": str(source.resolve()), "reference": None, "target": None, "out": str(out.resolve()), "llm": "none",
              "refine": {}, "device": "cpu", "revision": None}
    run = Run.create(runs, inputs, run_id)
    for name, stage in STAGES:
        if name == stop:
            break
        run.start_stage(name)
        run.finish_stage(name, stage(run), 0.0)
    return run
