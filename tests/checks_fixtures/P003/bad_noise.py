# ruff: noqa
import torch
from torch import randn as sample_noise

from diffusers import DiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor


def make_noise(shape):
    return torch.randn(shape)  # <- P003


class MyPipeline(DiffusionPipeline):
    def prepare_latents(self, shape, generator):
        a = torch.randn(shape)  # <- P003
        b = sample_noise(shape)  # <- P003
        c = randn_tensor(shape, generator=None)  # <- P003
        d = make_noise(shape)
        return a + b + c + d
