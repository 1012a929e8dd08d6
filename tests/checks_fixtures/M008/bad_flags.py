# ruff: noqa
import torch

from diffusers.models.modeling_utils import ModelMixin


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = torch.nn.LayerNorm(2)


class M(ModelMixin):
    _no_split_modules = ["NoSuchBlockAnywhere"]  # <- M008
    _skip_layerwise_casting_patterns = ["rope_embedder", "norm"]  # <- M008

    def __init__(self):
        super().__init__()
        self.block = Block()
        self.pos_embed = torch.nn.Linear(2, 2)
