# ruff: noqa
import torch

from diffusers.utils import logging

logger = logging.get_logger(__name__)
DEFAULT_SCALE = torch.tensor(1.0)


class Model(torch.nn.Module):
    @torch.no_grad()
    def encode(self, x):
        print("computing")  # at run time, not on import
        return x

    def forward(self, x):
        return self.encode(x)
