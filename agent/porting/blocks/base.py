"""The contract every block family keeps, and the readers of reference modules they share.

A family is used in two places. Inside the sandbox (`sandbox/jobs/try_blocks.py`) it looks at a
live reference module (its parameters, children and the calls it received) and proposes
candidate settings; the job builds the block from `code(choice)` and measures it against the
recorded outputs. On the host, the blocks stage takes the settings the job proved (plain data,
checked against `choices()`), asks the same `code(choice)` for the source the port should
contain, and the codemod (`agent/porting/substitute.py`) writes it. One template serves both,
so what was measured is what gets written.

This package imports nothing from `agent` and only torch and diffusers from outside: the job
mounts it alone into the sandbox.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

Scalar = bool | int | float | str | None


@dataclass(frozen=True)
class BlockCode:
    """The source a port holds for one substitution.

    `main` and each slot's constructor are templates over the family's dims (`{dim}`), plus
    `{name}` for each definition's final class name. `call` is the call-site glue over `{self}`
    (the main module), each slot name, each definition's placeholder, and `{0}`, `{1}`, ... (the
    reference forward's arguments in signature order; the codemod parenthesises an argument that
    the glue subscripts, and refuses to repeat one that is not a plain expression); None means the
    block is called exactly like the reference module. A definition whose preferred name is lower
    case is a helper function and keeps that name (classes get the port's prefix).
    Functions: `main` is the replacement call over role names, `call` is unused.
    """

    imports: tuple[tuple[str, str], ...]  # (diffusers module, name); the codemod makes them relative in-tree
    main: str
    slots: tuple[tuple[str, str], ...] = ()  # (preferred attribute name, constructor template)
    call: str | None = None
    definitions: tuple[tuple[str, str, str], ...] = ()  # (placeholder, preferred class name, source template)
    numpy_to_torch: bool = False  # functions: the reference returned a numpy array, the replacement a tensor
    defaults: tuple[tuple[str, str], ...] = ()  # (keyword, literal): left out of the written constructor when it renders to this
    positions: tuple[str, ...] = ()  # the block forward's leading parameters, in order: lets the codemod write `call` positionally


@dataclass
class Proposal:
    """One candidate: a choice from the family's enumerated settings and the numbers read from
    this instance (functions: role -> the reference parameter that plays it)."""

    choice: dict[str, Scalar]
    dims: dict[str, Scalar]
    ignore: tuple[str, ...] = ()  # function parameters the replacement drops (call sites must not pass them)


@dataclass
class Call:
    """One recorded call: the reference forward's arguments bound by name (defaults applied),
    as the module received them, and what it returned."""

    args: tuple
    kwargs: dict[str, Any]
    bound: dict[str, Any]
    output: Any
    params: list[str] = field(default_factory=list)  # the forward's parameter names in order

    def positional(self, i: int) -> Any:
        return self.bound.get(self.params[i]) if i < len(self.params) else None


class Family:
    """One diffusers building-block family. Subclasses fill in the four methods."""

    name: str = ""
    block: str = ""  # how the report names the block
    origin: str = "diffusers"  # "diffusers" or "torch": where the parameters end up living
    kind: str = "module"  # "module" or "function"
    aliases: dict[str, tuple[str, ...]] = {}  # dim -> words a constructor argument carrying it may contain

    def choices(self) -> list[dict[str, Scalar]]:
        """Every setting this family can write: the host accepts a proven choice only from here."""
        raise NotImplementedError

    def propose(self, target: Any, calls: list[Call]) -> list[Proposal] | str:
        """Candidates for this module (or function), in order of preference, or why none fits."""
        raise NotImplementedError

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        raise NotImplementedError

    def block_for(self, choice: dict[str, Scalar]) -> str:
        """The block's name for one setting (a family may cover several classes)."""
        return self.block


def grid(**axes: tuple) -> list[dict[str, Scalar]]:
    """Every combination of the given settings, in order (the first value of each axis first)."""
    out: list[dict[str, Scalar]] = [{}]
    for key, values in axes.items():
        out = [{**c, key: v} for c in out for v in values]
    return out


# --- readers of a live reference module (used inside the sandbox only) ---------------------


def linears(module: Any) -> list[tuple[str, int, int, bool]]:
    """(name, in, out, has bias) of every nn.Linear under `module`, in registration order."""
    from torch import nn

    return [(n, m.in_features, m.out_features, m.bias is not None) for n, m in module.named_modules() if isinstance(m, nn.Linear)]


def convs(module: Any) -> list[tuple[str, Any]]:
    from torch import nn

    return [(n, m) for n, m in module.named_modules() if isinstance(m, nn.Conv2d)]


def modules_of(module: Any, *types: type) -> list[tuple[str, Any]]:
    return [(n, m) for n, m in module.named_modules() if n and isinstance(m, types)]


def parameter_count(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def covered(module: Any, parts: list[Any]) -> bool:
    """The parts' parameters are all of the module's parameters."""
    return sum(parameter_count(p) for p in parts) == parameter_count(module)


def is_tensor(value: Any, ndim: int | None = None, floating: bool | None = None) -> bool:
    import torch

    if not isinstance(value, torch.Tensor):
        return False
    if ndim is not None and value.dim() != ndim:
        return False
    return floating is None or value.is_floating_point() == floating


def tensor_args(call: Call) -> list[tuple[int, Any]]:
    """(position, tensor) for each bound argument that is a tensor."""
    return [(i, call.bound[p]) for i, p in enumerate(call.params) if is_tensor(call.bound.get(p))]


def only_first_argument(calls: list[Call]) -> bool:
    """Every call passed one value (the first parameter) and left the rest at their defaults."""
    return all(len(c.args) + len(c.kwargs) == 1 and (c.args or c.params[:1] == list(c.kwargs)) for c in calls)


def neutral(value: Any) -> bool:
    """None, False or 0: an option left off."""
    return value is None or value is False or (type(value) is int and value == 0)


def float_attr(module: Any, names: tuple[str, ...]) -> float | None:
    for n in names:
        v = getattr(module, n, None)
        if isinstance(v, float) and not isinstance(v, bool):
            return v
    return None


def int_attrs(module: Any, names: tuple[str, ...]) -> list[int]:
    out = []
    for n in names:
        v = getattr(module, n, None)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            out.append(v)
    return out


def words(name: str) -> set[str]:
    """The lower-case words of an identifier: `numHeads` / `num_heads` -> {num, heads}."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return {w for w in spaced.lower().split("_") if w}
