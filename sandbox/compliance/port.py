"""The port as every check sees it: how it is built, its seeded inputs, one forward call, and
how two forwards' outputs are compared."""

from __future__ import annotations

import copy
import inspect
import math
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sandbox.parity.exchange import flatten_output
from sandbox.parity.runside.spec import cast, seed_everything

# Seeds of the two input sets every check may draw on (the parity engine's fixed seed is 0 too).
INPUT_SEEDS = (0, 1)
# The seed set before building the port, and before every forward (dropout or noise in a forward
# then repeats exactly between the two calls a check compares).
BUILD_SEED = 20_011
FORWARD_SEED = 4_242


@dataclass
class Port:
    """The class, how to build it (converted weights, or its config with seeded random weights
    when there are none), the spec whose `inputs(seed)["candidate"]` feed it, and the tolerance
    (max abs) within which two outputs count as equal."""

    cls: type
    config: dict[str, Any]
    weights_dir: str | None
    spec: Any
    tolerance: float
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    _base: torch.nn.Module | None = field(default=None, repr=False)

    def build(self, seed: int = BUILD_SEED) -> torch.nn.Module:
        """A freshly constructed port in eval mode on the device, float32."""
        seed_everything(seed)
        if self.weights_dir:
            model = self.cls.from_pretrained(self.weights_dir)
        else:
            model = self.cls(**self.config)
        return model.to(self.device, torch.float32).eval()

    def construct(self, seed: int = BUILD_SEED) -> tuple[torch.nn.Module, dict[str, list[str]]]:
        """The port built by its constructor (with torch's initialisation, which `from_pretrained`
        skips) and the converted weights loaded with `load_state_dict`: what the class computes
        with these weights. Also the keys that did not load."""
        seed_everything(seed)
        if not self.weights_dir:
            return self.cls(**self.config).to(self.device, torch.float32).eval(), {"missing": [], "unexpected": []}
        from safetensors.torch import load_file

        model = self.cls.from_config(self.cls.load_config(self.weights_dir))
        state: dict[str, torch.Tensor] = {}
        for path in sorted(Path(self.weights_dir).glob("*.safetensors")):
            state.update(load_file(str(path)))
        loaded = model.load_state_dict(state, strict=False)
        keys = {"missing": sorted(loaded.missing_keys), "unexpected": sorted(loaded.unexpected_keys)}
        return model.to(self.device, torch.float32).eval(), keys

    def model(self) -> torch.nn.Module:
        """A private copy of the port (built once, copied per check so no check sees another's
        changes: dtype casts, checkpointing, attention backends, compilation)."""
        if self._base is None:
            self._base = self.build()
        try:
            return copy.deepcopy(self._base)
        except Exception:  # a module that cannot be copied is built again
            return self.build()

    def inputs(self, seed: int, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
        """The candidate keyword arguments of the spec's input set `seed`, on the device."""
        made = self.spec.inputs(seed)
        kwargs = made["candidate"] if isinstance(made, dict) and "candidate" in made else made
        if not isinstance(kwargs, dict):
            raise TypeError(f"spec inputs({seed}) must give a dict of keyword arguments")
        return cast(dict(kwargs), self.device, dtype)

    def forward(self, model: torch.nn.Module, kwargs: dict[str, Any], *, grad: bool = False, **extra: Any) -> Any:
        seed_everything(FORWARD_SEED)
        with torch.set_grad_enabled(grad):
            return model(**kwargs, **extra)

    def source_folder(self) -> Path | None:
        try:
            return Path(inspect.getsourcefile(self.cls) or "").resolve().parent
        except (TypeError, OSError):
            return None

    def where(self, exc: BaseException) -> str | None:
        """The innermost line of the port's own code that `exc` went through (`file:line in fn: code`)."""
        folder = self.source_folder()
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if folder and Path(f.filename).resolve().parent == folder]
        if not frames:
            return None
        f = frames[-1]
        return f"{Path(f.filename).name}:{f.lineno} in {f.name}: {(f.line or '').strip()}"[:300]

    def forward_parameters(self, model: torch.nn.Module | None = None) -> dict[str, inspect.Parameter]:
        target = model.forward if model is not None else self.cls.forward
        params = dict(inspect.signature(target).parameters)
        params.pop("self", None)
        return params


def output_tensors(output: Any) -> list[tuple[str, torch.Tensor]]:
    """The tensors of a forward's output with their paths (`output`, `output.sample`, `output[0]`)."""
    return [(path, leaf) for path, leaf in flatten_output(output) if isinstance(leaf, torch.Tensor)]


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference; inf when shapes differ, nan when either side has a nan."""
    if a.shape != b.shape:
        return math.inf
    if a.numel() == 0:
        return 0.0
    return float((a.detach().double() - b.detach().double()).abs().max())


def within(diff: float, tolerance: float) -> bool:
    return not math.isnan(diff) and diff <= tolerance


def worst_difference(first: Any, second: Any) -> dict[str, Any]:
    """Compare two outputs tensor by tensor (in order); the tensor that differs most, with its
    difference, or a structure problem when the outputs do not line up."""
    return compare_tensors(output_tensors(first), output_tensors(second))


def compare_tensors(a: list[tuple[str, torch.Tensor]], b: list[tuple[str, torch.Tensor]]) -> dict[str, Any]:
    """`worst_difference` on outputs already flattened by `output_tensors`."""
    if len(a) != len(b):
        return {"tensor": None, "max_abs_diff": math.inf, "problem": f"{len(a)} output tensors against {len(b)}"}
    if not a:
        return {"tensor": None, "max_abs_diff": math.inf, "problem": "the output holds no tensor"}
    worst: dict[str, Any] = {"tensor": a[0][0], "max_abs_diff": 0.0}
    for (path, x), (_, y) in zip(a, b, strict=True):
        d = max_abs_diff(x, y)
        if x.shape != y.shape:
            return {"tensor": path, "max_abs_diff": d, "problem": f"shape {list(x.shape)} against {list(y.shape)}"}
        if math.isnan(d) or d > worst["max_abs_diff"]:
            worst = {"tensor": path, "max_abs_diff": d}
            if math.isnan(d):
                break
    return worst


def describe_signature(port: Port) -> str:
    names = ", ".join(port.forward_parameters())
    return f"{port.cls.__name__}.forward({names})"
