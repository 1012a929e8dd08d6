"""Class-label embeddings: diffusers' `LabelEmbedding`, an embedding table with an optional extra
row for the "no label" token of classifier-free guidance (present when `dropout_prob > 0`)."""

from __future__ import annotations

from typing import Any

from .base import BlockCode, Call, Family, Proposal, Scalar, covered, float_attr, is_tensor, modules_of

EMBEDDINGS = "diffusers.models.embeddings"


class LabelEmbeddingFamily(Family):
    name = "label-embedding"
    block = "LabelEmbedding"
    aliases = {"num_classes": ("classes", "labels"), "hidden_size": ("hidden", "dim", "size", "embed"), "dropout_prob": ("dropout", "drop", "prob")}

    def choices(self) -> list[dict[str, Scalar]]:
        return [{"cfg_row": r, "labels_only": o} for r in (False, True) for o in (False, True)]

    def propose(self, module: Any, calls: list[Call]) -> list[Proposal] | str:
        from torch import nn

        tables = modules_of(module, nn.Embedding)
        if len(tables) != 1 or not covered(module, [tables[0][1]]):
            return "not a single embedding table"
        rows, width = tables[0][1].weight.shape
        if not calls or not all(is_tensor(c.positional(0), floating=False) for c in calls):
            return "its first argument is not a tensor of integer labels"
        labels_only = any(len(c.args) + len(c.kwargs) > 1 for c in calls)
        classes = getattr(module, "num_classes", None)
        dropout = float_attr(module, ("dropout_prob", "class_dropout_prob", "dropout"))
        out = [Proposal({"cfg_row": False, "labels_only": labels_only}, {"num_classes": rows, "hidden_size": width, "dropout_prob": 0.0})]
        if classes == rows - 1 and dropout:
            # the last row is the "no label" token; LabelEmbedding keeps it only when dropout_prob > 0
            out.insert(0, Proposal({"cfg_row": True, "labels_only": labels_only}, {"num_classes": rows - 1, "hidden_size": width, "dropout_prob": dropout}))
        return out

    def code(self, choice: dict[str, Scalar]) -> BlockCode:
        dropout = "{dropout_prob}" if choice["cfg_row"] else "0.0"
        return BlockCode(
            imports=((EMBEDDINGS, "LabelEmbedding"),),
            main="LabelEmbedding({num_classes}, {hidden_size}, dropout_prob=" + dropout + ")",
            # a training flag or drop mask passed beside the labels is dropped: LabelEmbedding follows self.training
            call="{self}({0})" if choice["labels_only"] else None,
        )
