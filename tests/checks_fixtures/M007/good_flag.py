# ruff: noqa
import torch

from diffusers.models.modeling_utils import ModelMixin


class Block(torch.nn.Module):
    def forward(self, x):
        return x


class Encoder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.gradient_checkpointing = False
        self.block = Block()

    def forward(self, x):
        if torch.is_grad_enabled() and self.gradient_checkpointing:
            return self._gradient_checkpointing_func(self.block, x)
        return self.block(x)


class M(ModelMixin):
    _supports_gradient_checkpointing = True

    def __init__(self):
        super().__init__()
        self.encoder = Encoder()

    def forward(self, x):
        return self.encoder(x)
