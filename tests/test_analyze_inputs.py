"""Inputs from the model, not from names: the analyze stage probes the reference (sandboxed) and
reads what the first module that receives each argument expects; masks, token inputs, 2-D
conditioning vectors, 1-D audio and video are sized from the model; optional arguments are
provided only when the model reads them; an inputs file wins; what cannot be decided is named."""

import json

import pytest
from porter_sources import analyze_source, by_name, lay_out

from agent.errors import IntegrateError

TOKENS = """
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.out = nn.Linear(dim, dim)

    def forward(self, x, mask):
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-1, -2)) / (d // self.heads) ** 0.5
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
        return self.out((scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, d))


class TokenDenoiser(nn.Module):
    def __init__(self, token_dim=24, hidden=32, cond_dim=12, heads=2, num_classes=None):
        super().__init__()
        self.proj_in = nn.Linear(token_dim, hidden)
        self.cond = nn.Linear(cond_dim, hidden)
        self.time = nn.Sequential(nn.Linear(1, hidden), nn.SiLU())
        self.block = Block(hidden, heads)
        self.labels = nn.Embedding(num_classes, hidden) if num_classes else None
        self.proj_out = nn.Linear(hidden, token_dim)

    def forward(self, tokens, t, vec, mask, extra=None, labels=None, scale: float = 1.0, attn_bias=None):
        h = self.proj_in(tokens) + self.cond(vec)[:, None] + self.time(t[:, None])[:, None]
        if self.labels is not None and labels is not None:
            h = h + self.labels(labels)[:, None]
        return self.proj_out(self.block(h, mask)) * scale
"""

AUDIO = """
import torch
from torch import nn


class AudioNet(nn.Module):
    def __init__(self, in_channels=2, dim=16):
        super().__init__()
        self.conv_in = nn.Conv1d(in_channels, dim, 3, padding=1)
        self.time = nn.Linear(1, dim)
        self.conv_out = nn.Conv1d(dim, in_channels, 3, padding=1)

    def forward(self, audio, sigma):
        h = self.conv_in(audio) + self.time(sigma[:, None].log())[:, :, None]
        return self.conv_out(torch.nn.functional.silu(h))
"""

VIDEO = """
import torch
from torch import nn


class VideoNet(nn.Module):
    def __init__(self, channels=3, dim=8, context_dim=20):
        super().__init__()
        self.conv_in = nn.Conv3d(channels, dim, 3, padding=1)
        self.to_k = nn.Linear(context_dim, dim)
        self.conv_out = nn.Conv3d(dim, channels, 3, padding=1)

    def forward(self, x, timesteps, context=None):
        h = self.conv_in(x)
        if context is not None:
            h = h + self.to_k(context).mean(1)[:, :, None, None, None]
        return self.conv_out(h) * timesteps[:, None, None, None, None]
"""


def test_tokens_conditioning_vector_and_mask_are_sized_from_the_model(tmp_path):
    src = lay_out(tmp_path / "tokens", {"tokens_model.py": TOKENS}, {"architectures": ["TokenDenoiser"], "token_dim": 24, "cond_dim": 12}, "tokens_model")
    _, analysis = analyze_source(src, tmp_path / "runs")
    inputs = by_name(analysis)
    assert inputs["tokens"]["kind"] == "randn" and len(inputs["tokens"]["shape"]) == 3 and inputs["tokens"]["shape"][-1] == 24
    assert inputs["vec"] == {**inputs["vec"], "kind": "randn", "shape": [2, 12]}  # a 2-D conditioning vector
    assert inputs["mask"]["kind"] == "mask" and inputs["mask"]["mode"] == "bool"
    assert inputs["mask"]["shape"] == [2, inputs["tokens"]["shape"][1]]  # as long as the tokens it masks
    assert inputs["t"]["shape"] == [2]
    decisions = {d["name"]: d for d in analysis["input_decisions"]}
    assert decisions["extra"]["decision"] == "left out" and "does not read it" in decisions["extra"]["reason"]
    assert decisions["labels"]["decision"] == "left out"  # no label embedding in this config
    assert decisions["scale"]["decision"] == "left out" and "default" in decisions["scale"]["reason"]
    assert decisions["attn_bias"]["decision"] == "left out" and "does not read it" in decisions["attn_bias"]["reason"]
    assert "Linear(in_features=12)" in decisions["vec"]["reason"]
    assert set(inputs) == {"tokens", "t", "vec", "mask"}


def test_audio_is_one_dimensional_and_video_three_dimensional(tmp_path):
    audio = lay_out(tmp_path / "audio", {"audio_model.py": AUDIO}, {"architectures": ["AudioNet"], "in_channels": 2, "dim": 16}, "audio_model")
    _, analysis = analyze_source(audio, tmp_path / "runs")
    x = by_name(analysis)["audio"]
    assert x["shape"][:2] == [2, 2] and len(x["shape"]) == 3
    assert {d["name"]: d for d in analysis["input_decisions"]}["audio"]["conv_dims"] == 1

    video = lay_out(tmp_path / "video", {"video_model.py": VIDEO}, {"architectures": ["VideoNet"], "channels": 3, "context_dim": 20}, "video_model")
    _, analysis = analyze_source(video, tmp_path / "runs")
    inputs = by_name(analysis)
    assert len(inputs["x"]["shape"]) == 5 and inputs["x"]["shape"][1] == 3
    assert inputs["context"]["shape"][-1] == 20  # optional, provided: the model reads it
    assert "optional" in {d["name"]: d for d in analysis["input_decisions"]}["context"]["reason"]


def test_an_inputs_file_wins_and_the_command_line_one_wins_over_the_shipped_one(tmp_path):
    shipped = """
        import torch

        def inputs(seed):
            g = torch.Generator().manual_seed(seed)
            return {"audio": torch.randn(2, 2, 40, generator=g), "sigma": torch.rand(2, generator=g) + 0.5}
    """
    src = lay_out(tmp_path / "audio", {"audio_model.py": AUDIO, "integrate_inputs.py": shipped}, {"architectures": ["AudioNet"], "in_channels": 2}, "audio_model")
    _, analysis = analyze_source(src, tmp_path / "runs")
    [entry] = analysis["inputs"]
    assert entry["kind"] == "file" and entry["origin"] == "integrate_inputs.py in the source folder" and entry["returns"] == "kwargs"
    assert entry["arguments"]["audio"]["shape"] == [2, 2, 40]
    assert "integrate_inputs.py" not in analysis["code_files"]  # not reference code

    given = tmp_path / "my_inputs.py"
    given.write_text(
        "import torch\n\n\ndef inputs(seed):\n    g = torch.Generator().manual_seed(seed)\n"
        "    x = torch.randn(2, 2, 8, generator=g)\n    s = torch.rand(2, generator=g) + 1\n"
        "    return {'reference': {'audio': x, 'sigma': s}, 'candidate': {'audio': x, 'sigma': s}}\n"
    )
    _, analysis = analyze_source(src, tmp_path / "runs", inputs_file=str(given))
    [entry] = analysis["inputs"]
    assert entry["origin"] == "--inputs my_inputs.py" and entry["returns"] == "pair" and entry["arguments"]["audio"]["shape"] == [2, 2, 8]


def test_an_argument_it_cannot_decide_is_named_with_how_to_tell_it(tmp_path):
    code = AUDIO.replace("def forward(self, audio, sigma):", "def forward(self, audio, sigma, mode: str):")
    src = lay_out(tmp_path / "audio", {"audio_model.py": code}, {"architectures": ["AudioNet"], "in_channels": 2}, "audio_model")
    with pytest.raises(IntegrateError) as info:
        analyze_source(src, tmp_path / "runs")
    message = str(info.value)
    assert "'mode'" in message and "integrate_inputs.py" in message and "--inputs" in message


def test_missing_config_key_names_the_key_and_the_fix_not_resume(tmp_path):
    src = lay_out(tmp_path / "audio", {"audio_model.py": AUDIO}, {"architectures": ["AudioNet"]}, "audio_model")
    config = json.loads((src / "config.json").read_text())
    (src / "audio_model.py").write_text((src / "audio_model.py").read_text().replace("in_channels=2, dim=16", "in_channels, dim=16"))
    (src / "config.json").write_text(json.dumps(config))
    with pytest.raises(IntegrateError) as info:
        analyze_source(src, tmp_path / "runs")
    assert "'in_channels'" in str(info.value) and "add it to config.json" in str(info.value) and "resume" not in str(info.value)
