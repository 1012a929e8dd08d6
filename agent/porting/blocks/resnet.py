"""Residual blocks: diffusers' `ResnetBlock2D` (GroupNorm, activation, 3x3 conv, timestep
projection added or applied as scale/shift, GroupNorm, activation, dropout, 3x3 conv, 1x1
shortcut when the width changes; optionally up- or downsampling on the way in).

From the shapes: widths, groups, eps, how the timestep enters (projection width; none at all in
an autoencoder's block, `temb_channels=None`, called with `temb=None`), the shortcut; from the
calls: up/down sampling. Enumerated: the activation. Dropout, scale/shift and up/down are dims,
so a reference that takes them as constructor arguments keeps passing them through.
"""

from __future__ import annotations

from typing import Any

from .base import (
    BlockCode,
    Call,
    Family,
    Proposal,
    Scalar,
    convs,
    covered,
    grid,
    is_tensor,
    linears,
    modules_of,
)

RESNET = "diffusers.models.resnet"
ACTIVATIONS = ("swish", "mish", "gelu")


class ResnetBlock2DFamily(Family):
    name = "resnet-block-2d"
    block = "ResnetBlock2D"
    aliases = {"in_channels": ("channels", "in"), "out_channels": ("out",), "temb_channels": ("emb", "temb", "time"),
               "groups": ("groups",), "eps": ("eps",), "dropout": ("dropout", "drop"), "scale_shift": ("scale", "shift", "use", "norm"),
               "up": ("up", "upsample"), "down": ("down", "downsample")}

    def choices(self) -> list[dict[str, Scalar]]:
        return grid(non_linearity=ACTIVATIONS, shortcut_bias=(True, False), groups_out=(False, True), temb=(True, False))

    def propose(self, module: Any, calls: list[Call]) -> list[Proposal] | str:
        from torch import nn

        norms = [m for _, m in modules_of(module, nn.GroupNorm)]
        conv = [m for _, m in convs(module)]
        lin = linears(module)
        if len(norms) != 2 or len(conv) not in (2, 3) or len(lin) > 1:
            return f"{len(norms)} group norms, {len(conv)} convolutions, {len(lin)} linear layers: not a resnet block's 2, 2-3, 0-1"
        if not covered(module, [*norms, *conv, *(module.get_submodule(n) for n, *_ in lin)]):
            return "it has parameters besides its norms, convolutions and timestep projection"
        c_in, c_out = norms[0].num_channels, norms[1].num_channels
        three = [c for c in conv if c.kernel_size == (3, 3) and c.stride == (1, 1) and c.padding == (1, 1)]
        short = [c for c in conv if c.kernel_size == (1, 1) and c.padding == (0, 0)]
        if len(three) != 2 or len(conv) - 2 != len(short) or (three[0].in_channels, three[0].out_channels, three[1].out_channels) != (c_in, c_out, c_out):
            return "its convolutions are not two 3x3 (and a 1x1 shortcut) of the norms' widths"
        if norms[0].eps != norms[1].eps or not norms[0].affine:
            return "its two group norms differ in eps or have no affine parameters"
        _, temb, proj, _ = lin[0] if lin else (None, None, c_out, None)
        if proj not in (c_out, 2 * c_out):
            return f"its timestep projection has width {proj}, not {c_out} or {2 * c_out}"
        resample = set()
        for c in calls:
            x, emb = c.positional(0), c.positional(1)
            if not (is_tensor(x, ndim=4, floating=True) and is_tensor(c.output, ndim=4)):
                return "it is not called with an image batch [batch, channels, h, w]"
            if lin and not is_tensor(emb, ndim=2, floating=True):
                return "it is not called as f(x [batch, channels, h, w], temb [batch, channels])"
            if len(c.args) + len(c.kwargs) != (2 if lin else 1):
                return "it is called with more than the input" + (" and the timestep embedding" if lin else " (and it has no timestep projection)")
            resample.add(c.output.shape[-1] / x.shape[-1])
        if len(resample) != 1 or not resample <= {1.0, 2.0, 0.5}:
            return "its output size is not its input's, twice or half of it"
        ratio = resample.pop()
        drops = [m.p for _, m in modules_of(module, nn.Dropout)]
        # what a reference usually takes as constructor arguments is a dim, so the port keeps passing them
        dims = {"in_channels": c_in, "out_channels": [None, c_out] if c_in == c_out else c_out,
                "groups": norms[0].num_groups, "groups_out": norms[1].num_groups, "eps": norms[0].eps,
                "dropout": drops[0] if drops else 0.0, "scale_shift": proj == 2 * c_out, "up": ratio == 2.0, "down": ratio == 0.5}
        if lin:
            dims["temb_channels"] = temb
        base = {"shortcut_bias": short[0].bias is not None if short else True, "groups_out": norms[0].num_groups != norms[1].num_groups,
                "temb": bool(lin)}
        return [Proposal({**base, "non_linearity": act}, dims) for act in ACTIVATIONS]

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        temb = choice.get("temb", True)
        args = f"in_channels={{in_channels}}, out_channels={{out_channels}}, temb_channels={'{temb_channels}' if temb else 'None'}, groups={{groups}}"
        if choice["groups_out"]:
            args += ", groups_out={groups_out}"
        args += ', eps={eps}, dropout={dropout}, time_embedding_norm="scale_shift" if {scale_shift} else "default"'
        args += ", up={up}, down={down}"
        if choice["non_linearity"] != "swish":
            args += f", non_linearity={choice['non_linearity']!r}"
        if not choice["shortcut_bias"]:
            args += ", conv_shortcut_bias=False"
        # without a timestep projection the block is still called with `temb` (None): diffusers' own
        # autoencoders call it as `resnet(hidden_states, temb=None)`
        return BlockCode(imports=((RESNET, "ResnetBlock2D"),), main=f"ResnetBlock2D({args})", call=None if temb else "{self}({0}, temb=None)",
                         defaults=(("dropout", "0.0"), ("time_embedding_norm", '"default"'), ("up", "False"), ("down", "False")))
