# ruff: noqa
import torch
from torch import nn

from diffusers.models.modeling_utils import ModelMixin

agent_name = "not an import"


class Model(ModelMixin):
    def forward(self, x, sandbox=None):
        return x
