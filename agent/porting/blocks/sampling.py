"""2x resampling: diffusers' `Downsample2D` (strided 3x3 convolution, or 2x2 average pooling) and
`Upsample2D` (nearest-neighbour 2x, then an optional 3x3 convolution)."""

from __future__ import annotations

from typing import Any

from .base import BlockCode, Call, Family, Proposal, Scalar, convs, covered, grid, is_tensor

DOWNSAMPLING = "diffusers.models.downsampling"
UPSAMPLING = "diffusers.models.upsampling"
ALIASES = {"channels": ("channels", "in", "dim"), "out_channels": ("out",), "use_conv": ("conv",), "padding": ("padding", "pad")}


def _resampled(calls: list[Call], factor: float) -> tuple[int, int] | str:
    """(input channels, output channels) when every call maps x [B, C, H, W] to `factor` times its size."""
    widths = set()
    for c in calls:
        x = c.positional(0)
        if not (is_tensor(x, ndim=4, floating=True) and is_tensor(c.output, ndim=4)) or len(c.args) + len(c.kwargs) != 1:
            return "it is not called with one image batch [batch, channels, height, width]"
        if (c.output.shape[-2] / x.shape[-2], c.output.shape[-1] / x.shape[-1]) != (factor, factor):
            return f"its output is not {factor:g} times its input's size"
        widths.add((x.shape[1], c.output.shape[1]))
    return widths.pop() if len(widths) == 1 else ("it never ran" if not widths else "its widths vary")


def _out(widths: tuple[int, int]) -> Any:
    """The output width as a dim: None (meaning "the input's") is as good as the number when
    they are equal, and a constructor that left it None then keeps doing so."""
    return [None, widths[1]] if widths[0] == widths[1] else widths[1]


class Downsample2DFamily(Family):
    name = "downsample-2d"
    block = "Downsample2D"
    aliases = ALIASES

    def choices(self) -> list[dict[str, Scalar]]:
        return grid(bias=(True, False))

    def propose(self, module: Any, calls: list[Call]) -> list[Proposal] | str:
        widths = _resampled(calls, 0.5)
        if isinstance(widths, str):
            return widths
        found = convs(module)
        if len(found) > 1 or not covered(module, [m for _, m in found]):
            return "it has parameters besides one convolution"
        bias = True
        padding = 1
        if found:
            conv = found[0][1]
            if conv.kernel_size != (3, 3) or conv.stride != (2, 2) or conv.padding[0] != conv.padding[1] or conv.padding[0] not in (0, 1):
                return "its convolution is not a 3x3 stride-2 one"
            padding, bias = conv.padding[0], conv.bias is not None
        dims = {"channels": widths[0], "out_channels": _out(widths), "padding": padding, "use_conv": bool(found)}
        return [Proposal({"bias": bias}, dims)]

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        args = "{channels}, use_conv={use_conv}, out_channels={out_channels}, padding={padding}"
        if not choice["bias"]:
            args += ", bias=False"
        return BlockCode(imports=((DOWNSAMPLING, "Downsample2D"),), main=f'Downsample2D({args}, name="op")')


class Upsample2DFamily(Family):
    name = "upsample-2d"
    block = "Upsample2D"
    aliases = ALIASES

    def choices(self) -> list[dict[str, Scalar]]:
        return grid(bias=(True, False))

    def propose(self, module: Any, calls: list[Call]) -> list[Proposal] | str:
        widths = _resampled(calls, 2.0)
        if isinstance(widths, str):
            return widths
        found = convs(module)
        if len(found) > 1 or not covered(module, [m for _, m in found]):
            return "it has parameters besides one convolution"
        bias = True
        if found:
            conv = found[0][1]
            if conv.kernel_size != (3, 3) or conv.stride != (1, 1) or conv.padding != (1, 1):
                return "its convolution is not a 3x3 one with padding 1"
            bias = conv.bias is not None
        dims = {"channels": widths[0], "out_channels": _out(widths), "use_conv": bool(found)}
        return [Proposal({"bias": bias}, dims)]

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        args = "{channels}, use_conv={use_conv}, out_channels={out_channels}"
        if not choice["bias"]:
            args += ", bias=False"
        return BlockCode(imports=((UPSAMPLING, "Upsample2D"),), main=f"Upsample2D({args})")
