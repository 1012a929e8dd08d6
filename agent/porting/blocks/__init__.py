"""The block library: one module per diffusers building-block family (see base.py for the
contract). FAMILIES is the order in which families are tried on a reference module."""

from __future__ import annotations

from .adanorm import AdaLayerNormContinuousFamily, AdaLayerNormZeroFamily
from .attention import AttentionFamily, SpatialAttentionFamily
from .base import BlockCode, Call, Family, Proposal
from .feedforward import ActivationFamily, FeedForwardFamily
from .joint_block import JointTransformerBlockFamily
from .label import LabelEmbeddingFamily
from .mlp_embedding import MLPEmbeddingFamily
from .norms import LayerNormFamily, RMSNormFamily
from .parallel_block import ParallelTransformerBlockFamily
from .patch_embed import PatchEmbedFamily
from .resnet import ResnetBlock2DFamily
from .sampling import Downsample2DFamily, Upsample2DFamily
from .sincos import SinCos2DFamily
from .timestep import TimestepEmbeddingFamily, TimestepFunctionFamily, TimestepMLPFamily, TimestepsFamily

FAMILIES: tuple[Family, ...] = (
    TimestepEmbeddingFamily(),
    TimestepsFamily(),
    TimestepMLPFamily(),
    LabelEmbeddingFamily(),
    AttentionFamily(),
    MLPEmbeddingFamily(),
    SpatialAttentionFamily(),
    FeedForwardFamily(),
    ActivationFamily(),
    AdaLayerNormZeroFamily(),
    AdaLayerNormContinuousFamily(),
    JointTransformerBlockFamily(),
    ParallelTransformerBlockFamily(),
    PatchEmbedFamily(),
    ResnetBlock2DFamily(),
    Downsample2DFamily(),
    Upsample2DFamily(),
    RMSNormFamily(),
    LayerNormFamily(),
    TimestepFunctionFamily(),
    SinCos2DFamily(),
)

BY_NAME: dict[str, Family] = {f.name: f for f in FAMILIES}

__all__ = ["BY_NAME", "FAMILIES", "BlockCode", "Call", "Family", "Proposal"]
