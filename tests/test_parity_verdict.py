"""The verdict's judgement on small models (both sides in this process: trusted specs only):
every output tensor compared by path, a NaN reference is its own error, wrapper modules stay
in the trace and the first divergence is named where the computation first differs."""

from __future__ import annotations

import textwrap

import pytest

from sandbox.parity import ParityError, run_parity_in_process

MODELS = '''
import torch
from dataclasses import dataclass
from torch import nn


class Scale(nn.Module):
    """Wraps its only child and adds a computation of its own: both own the same weights."""

    def __init__(self, factor=2.0):
        super().__init__()
        self.inner = nn.Linear(6, 6)
        self.factor = factor

    def forward(self, x):
        return self.inner(x) * self.factor


class Net(nn.Module):
    def __init__(self, factor=2.0, inner_eps=0.0):
        super().__init__()
        self.first = nn.Linear(6, 6)
        self.scale = Scale(factor)
        self.last = nn.Linear(6, 6)
        self.inner_eps = inner_eps

    def forward(self, x):
        x = self.first(x)
        x = self.scale(x)
        return self.last(x)


@dataclass
class Out:
    sample: torch.Tensor
    extra: torch.Tensor


def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 6, generator=g)
    return {"reference": {"x": x}, "candidate": {"x": x}}
'''


def spec(tmp_path, body: str):
    path = tmp_path / "spec.py"
    path.write_text(MODELS + textwrap.dedent(body))
    return path


def test_a_wrapper_s_own_computation_is_named_not_the_next_layer(tmp_path):
    report = run_parity_in_process(spec(tmp_path, """
        def reference():
            return Net(factor=2.0)
        def candidate():
            return Net(factor=3.0)
    """))
    assert not report["passed"]
    assert report["first_divergence"]["reference_module"] == "scale"
    names = [row["reference_module"] for row in report["layers"]]
    assert "scale" in names and "scale.inner" in names  # both kept although they own the same weights


def test_a_mutated_child_inside_a_wrapper_is_named_at_the_child(tmp_path):
    report = run_parity_in_process(spec(tmp_path, """
        import torch
        def reference():
            return Net()
        def candidate():
            m = Net()
            m.scale.inner.forward = lambda x: torch.nn.functional.linear(x, m.scale.inner.weight.t(), m.scale.inner.bias)
            return m
    """))
    assert not report["passed"]
    assert report["first_divergence"]["reference_module"] == "scale.inner"


def test_dataclass_and_tuple_outputs_are_compared_field_by_field(tmp_path):
    report = run_parity_in_process(spec(tmp_path, """
        class Ref(Net):
            def forward(self, x):
                y = super().forward(x)
                return y, y.sum(-1)
        class Cand(Net):
            def forward(self, x):
                y = super().forward(x)
                return Out(sample=y, extra=y.sum(-1) + 0.5)
        def reference():
            return Ref()
        def candidate():
            return Cand()
    """))
    assert not report["passed"]
    rows = [(r["reference"], r["candidate"], r["passed"]) for r in report["outputs"]]
    assert rows == [("output[0]", "output.sample", True), ("output[1]", "output.extra", False)]
    assert any("output.extra" in p for p in report["problems"])


def test_a_different_number_of_outputs_is_a_problem(tmp_path):
    report = run_parity_in_process(spec(tmp_path, """
        class Ref(Net):
            def forward(self, x):
                y = super().forward(x)
                return y, y
        def reference():
            return Ref()
        def candidate():
            return Net()
    """))
    assert not report["passed"]
    assert any("output structures differ" in p for p in report["problems"])


def test_a_reference_that_produces_nan_is_its_own_error(tmp_path):
    with pytest.raises(ParityError, match=r"the reference itself produces NaN/inf on these inputs .*x: float32 \[2, 6\]"):
        run_parity_in_process(spec(tmp_path, """
            import torch
            class Ref(Net):
                def forward(self, x):
                    return super().forward(x) / torch.zeros(())
            def reference():
                return Ref()
            def candidate():
                return Net()
        """))


def test_a_nan_in_the_candidate_never_passes(tmp_path):
    report = run_parity_in_process(spec(tmp_path, """
        import torch
        class Cand(Net):
            def forward(self, x):
                y = super().forward(x)
                y[0, 0] = float("nan")
                return y
        def reference():
            return Net()
        def candidate():
            return Cand()
    """))
    assert not report["passed"] and report["max_abs_diff"] == float("inf")


def test_every_seed_is_judged(tmp_path):
    report = run_parity_in_process(spec(tmp_path, """
        def reference():
            return Net()
        def candidate():
            return Net()
    """), seeds=[0, 7, 11])
    assert report["passed"] and [r["seed"] for r in report["outputs"]] == [0, 7, 11]


def test_layers_that_return_dataclasses_or_nothing_tensor_like_are_traced_or_left_out(tmp_path):
    """A modulation layer returning a tuple of dataclasses (FLUX.1's `Modulation`) is traced by
    its first field; a layer returning no tensor at all is left out of the layer table instead of
    stopping the verdict."""
    report = run_parity_in_process(spec(tmp_path, """
        from dataclasses import dataclass
        import torch
        from torch import nn

        @dataclass
        class ModOut:
            shift: torch.Tensor
            scale: torch.Tensor

        class Modulation(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(6, 12)
            def forward(self, x):
                shift, scale = self.lin(x).chunk(2, dim=-1)
                return (ModOut(shift, scale),)

        class Counter(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(6, 6)
            def forward(self, x):
                return {"calls": 1}

        class Mod(Net):
            def __init__(self, factor=2.0):
                super().__init__(factor)
                self.mod = Modulation()
                self.count = Counter()
            def forward(self, x):
                self.count(x)
                m = self.mod(x)[0]
                return super().forward(x) * (1 + m.scale) + m.shift

        def reference():
            return Mod()
        def candidate():
            return Mod(factor=3.0)
    """))
    assert not report["passed"]
    names = [row["reference_module"] for row in report["layers"]]
    assert "mod" in names and "count" not in names
    assert report["first_divergence"]["reference_module"] == "scale"
