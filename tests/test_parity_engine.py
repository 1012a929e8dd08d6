"""The parity engine on small models: passes faithful ports, never passes wrong ones, names where."""

import json
import textwrap

import pytest
from conftest import integrate

from sandbox.parity import ParityError
from sandbox.parity import run_parity_in_process as run_parity

MODELS = '''
import torch
from torch import nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x):
        return x + self.fc2(F.gelu(self.fc1(self.norm(x))))


class Ref(nn.Module):
    def __init__(self, dim=16, depth=3, eps=1e-6):
        super().__init__()
        self.proj_in = nn.Linear(8, dim)
        self.blocks = nn.ModuleList([Block(dim, eps) for _ in range(depth)])
        self.proj_out = nn.Linear(dim, 8)

    def forward(self, x):
        x = self.proj_in(x)
        for b in self.blocks:
            x = b(x)
        return self.proj_out(x)


def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 5, 8, generator=g) * 3
    return {"reference": {"x": x}, "candidate": {"x": x}}
'''


def write_spec(tmp_path, body: str, name="spec.py"):
    path = tmp_path / name
    path.write_text(MODELS + textwrap.dedent(body))
    return path


def test_faithful_port_passes(tmp_path):
    spec = write_spec(tmp_path, """
        def reference():
            return Ref()
        def candidate():
            return Ref()
    """)
    report = run_parity(spec)
    assert report["passed"] and report["first_divergence"] is None
    assert report["max_abs_diff"] == 0.0
    assert report["mapping"]["source"] == "inferred" and report["mapping"]["matched"] == 22
    assert {row["reference_module"] for row in report["layers"]} >= {"blocks.0.norm", "blocks.2.fc2", "proj_out"}


def test_wrong_eps_fails_and_names_the_module(tmp_path):
    spec = write_spec(tmp_path, """
        def reference():
            return Ref()
        def candidate():
            m = Ref()
            m.blocks[1].norm.eps = 1e-2
            return m
    """)
    report = run_parity(spec)
    assert not report["passed"]
    assert report["first_divergence"]["reference_module"] == "blocks.1.norm"


def test_unloaded_parameter_equal_by_initialisation_is_still_reported(tmp_path):
    # The port adds a layer-scale parameter the checkpoint does not have; at initialisation it is
    # all ones, so outputs agree exactly, but it was never loaded from anything.
    spec = write_spec(tmp_path, """
        class ScaledBlock(Block):
            def __init__(self, dim, eps=1e-6):
                super().__init__(dim, eps)
                self.gamma = nn.Parameter(torch.ones(dim))
            def forward(self, x):
                return super().forward(x) * self.gamma

        class Cand(Ref):
            def __init__(self):
                super().__init__()
                self.blocks[0] = ScaledBlock(16)

        def reference():
            return Ref()
        def candidate():
            return Cand()
    """)
    report = run_parity(spec)
    assert report["max_abs_diff"] == 0.0  # numerically indistinguishable ...
    assert not report["passed"]  # ... and still refused
    assert report["mapping"]["unmatched_candidate_names"] == ["blocks.0.gamma"]


def test_renamed_parameter_is_recovered_by_inference(tmp_path):
    spec = write_spec(tmp_path, """
        class ScaleNorm(nn.Module):
            def __init__(self, dim, eps):
                super().__init__()
                self.scale = nn.Parameter(torch.ones(dim))  # LayerNorm calls it "weight"
                self.bias = nn.Parameter(torch.zeros(dim))
                self.eps = eps
            def forward(self, x):
                return F.layer_norm(x, x.shape[-1:], self.scale, self.bias, self.eps)

        class Cand(Ref):
            def __init__(self):
                super().__init__()
                self.blocks[0].norm = ScaleNorm(16, 1e-6)

        def reference():
            m = Ref()
            with torch.no_grad():
                m.blocks[0].norm.weight.uniform_(0.5, 1.5)  # so loading the wrong thing would show
            return m
        def candidate():
            return Cand()
    """)
    report = run_parity(spec)
    assert report["passed"], report["problems"]
    assert report["mapping"]["source"] == "inferred" and report["mapping"]["unmatched_candidate"] == 0


def test_unloaded_ok_with_a_reason_is_accepted(tmp_path):
    spec = write_spec(tmp_path, """
        class Cand(Ref):
            def __init__(self):
                super().__init__()
                self.register_buffer("unused_stat", torch.zeros(3))
        def reference():
            return Ref()
        def candidate():
            return Cand()
        unloaded_ok = {"unused_stat": "running statistic recomputed at load time"}
    """)
    assert run_parity(spec)["passed"]


def test_spec_convert_with_renames(tmp_path):
    spec = write_spec(tmp_path, """
        class Cand(nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = Ref()
            def forward(self, x):
                return self.inner(x)
        def reference():
            return Ref()
        def candidate():
            return Cand()
        def convert(sd):
            return {"inner." + k: v for k, v in sd.items()}
    """)
    report = run_parity(spec)
    assert report["passed"], report["problems"]
    assert report["mapping"]["source"] == "spec"


def test_dropped_prefix_is_inferred(tmp_path):
    spec = write_spec(tmp_path, """
        class Wrapped(nn.Module):
            def __init__(self):
                super().__init__()
                self.model = Ref()
            def forward(self, x):
                return self.model(x)
        def reference():
            return Wrapped()
        def candidate():
            return Ref()
    """)
    report = run_parity(spec)
    assert report["passed"] and report["mapping"]["dropped_prefix"] == "model."


def test_saved_copy_that_differs_fails(tmp_path):
    spec = write_spec(tmp_path, """
        def reference():
            return Ref()
        def candidate():
            return Ref()
        def saved():
            return Ref()  # fresh random weights: not what was converted
    """)
    report = run_parity(spec)
    assert not report["passed"]
    assert report["saved"]["passed"] is False


def test_bfloat16_uses_its_preset(tmp_path):
    spec = write_spec(tmp_path, """
        def reference():
            return Ref()
        def candidate():
            return Ref()
    """)
    report = run_parity(spec, dtype="bfloat16")
    assert report["passed"] and report["tolerance"]["cosine"] == 0.999


@pytest.mark.parametrize("body, needle", [
    ("def reference():\n    return Ref()\n", "must define candidate"),
    ("raise RuntimeError('boom')\n", "fails to load"),
])
def test_broken_specs_cannot_run(tmp_path, body, needle):
    spec = tmp_path / "bad.py"
    spec.write_text(MODELS.replace("def inputs", "def _inputs") + body)
    with pytest.raises(ParityError, match=needle):
        run_parity(spec)


def test_cli_exit_codes_and_json(tmp_path):
    good = write_spec(tmp_path, "def reference():\n    return Ref()\ndef candidate():\n    return Ref()\n", "good.py")
    bad = write_spec(tmp_path, "def reference():\n    return Ref()\ndef candidate():\n    return Ref(eps=1e-1)\n", "bad.py")
    broken = tmp_path / "broken.py"
    broken.write_text("import not_a_module\n")

    proc = integrate("parity", str(good), "--json", str(tmp_path / "good.json"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "good.json").read_text())
    assert report["passed"] and report["sandbox"]["isolation"] in ("full", "reduced")

    proc = integrate("parity", str(bad), "--json", str(tmp_path / "bad.json"), "--plot", str(tmp_path / "bad.png"), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    png = (tmp_path / "bad.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and b"IDAT" in png
    assert json.loads((tmp_path / "bad.json").read_text())["first_divergence"]["reference_module"] == "blocks.0.norm"

    proc = integrate("parity", str(broken), cwd=tmp_path)
    assert proc.returncode == 2
    assert "not_a_module" in proc.stderr and "Traceback" not in proc.stderr.split("error:")[-1]
