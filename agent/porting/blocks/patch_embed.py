"""Patch embedding: diffusers' `PatchEmbed` without its own position embedding
(`pos_embed_type=None`): a strided convolution, flattened to tokens, optionally layer-normed.

From the shapes: patch size, channels, bias; from the calls: the image size (PatchEmbed keeps it
for its position embedding only, which is off here).
"""

from __future__ import annotations

from typing import Any

from .base import BlockCode, Call, Family, Proposal, Scalar, convs, covered, grid, is_tensor

EMBEDDINGS = "diffusers.models.embeddings"


class PatchEmbedFamily(Family):
    name = "patch-embed"
    block = "PatchEmbed"
    aliases = {"patch_size": ("patch",), "in_channels": ("in", "chans", "channels"), "embed_dim": ("embed", "dim", "hidden"),
               "height": ("img", "image", "size", "height", "input"), "width": ("img", "image", "size", "width", "input")}

    def choices(self) -> list[dict[str, Scalar]]:
        return grid(layer_norm=(False, True), bias=(True, False))

    def propose(self, module: Any, calls: list[Call]) -> list[Proposal] | str:
        from torch import nn

        found = convs(module)
        if len(found) != 1:
            return f"{len(found)} convolutions, not the one of a patch embedding"
        conv = found[0][1]
        k, s = conv.kernel_size, conv.stride
        if k[0] != k[1] or tuple(k) != tuple(s) or conv.padding not in ((0, 0), 0, "valid") or conv.groups != 1 or conv.dilation != (1, 1):
            return f"its convolution (kernel {tuple(k)}, stride {tuple(s)}, padding {conv.padding}) is not a plain patchify"
        norms = [m for _, m in module.named_modules() if isinstance(m, nn.LayerNorm)]
        if not covered(module, [conv]) or (norms and (norms[0].elementwise_affine or len(norms) > 1)):
            return "it has parameters besides the convolution (PatchEmbed's layer norm has none)"
        sizes = set()
        for c in calls:
            x = c.positional(0)
            if not (is_tensor(x, ndim=4, floating=True) and len(c.args) + len(c.kwargs) == 1):
                return "it is not called with one image batch [batch, channels, height, width]"
            sizes.add(tuple(x.shape[-2:]))
            expect = (x.shape[0], (x.shape[-2] // k[0]) * (x.shape[-1] // k[1]), conv.out_channels)
            if not is_tensor(c.output, ndim=3) or tuple(c.output.shape) != expect:
                return f"its output is not the [batch, tokens, {conv.out_channels}] token sequence"
        if len(sizes) != 1:
            return "it runs on images of several sizes"
        height, width = sizes.pop()
        if norms and norms[0].eps != 1e-6:
            return f"its layer norm eps is {norms[0].eps} (PatchEmbed's is 1e-6)"
        dims = {"height": height, "width": width, "patch_size": k[0], "in_channels": conv.in_channels, "embed_dim": conv.out_channels}
        return [Proposal({"layer_norm": bool(norms), "bias": conv.bias is not None}, dims)]

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        args = "height={height}, width={width}, patch_size={patch_size}, in_channels={in_channels}, embed_dim={embed_dim}"
        if choice["layer_norm"]:
            args += ", layer_norm=True"
        if not choice["bias"]:
            args += ", bias=False"
        return BlockCode(imports=((EMBEDDINGS, "PatchEmbed"),), main=f"PatchEmbed({args}, pos_embed_type=None)")
