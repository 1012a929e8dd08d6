# ruff: noqa
from dataclasses import dataclass

import torch
from torch import nn

from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput


@dataclass
class TinyModelOutput(BaseOutput):
    sample: torch.Tensor


class TinyModel(ModelMixin, ConfigMixin):
    """
    A tiny model.

    Parameters:
        hidden_size (`int`, defaults to 8): width of every block.
        num_layers (`int`, defaults to 2): number of blocks.
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(self, hidden_size: int = 8, num_layers: int = 2):
        super().__init__()
        self.gradient_checkpointing = False
        self.blocks = nn.ModuleList([nn.Linear(hidden_size, hidden_size) for _ in range(num_layers)])

    def forward(self, hidden_states, timestep, class_labels=None, return_dict: bool = True):
        for block in self.blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                hidden_states = self._gradient_checkpointing_func(block, hidden_states + timestep)
            else:
                hidden_states = block(hidden_states + timestep)
        if not return_dict:
            return (hidden_states,)
        return TinyModelOutput(sample=hidden_states)
