# ruff: noqa
import torch

from diffusers.models.modeling_utils import ModelMixin


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = torch.nn.LayerNorm(2)


class M(ModelMixin):
    _no_split_modules = ["Block", "BasicTransformerBlock"]
    _repeated_blocks = ["Block"]
    _skip_layerwise_casting_patterns = ["pos_embed", "norm"]

    def __init__(self):
        super().__init__()
        self.block = Block()
        self.pos_embed = torch.nn.Linear(2, 2)
