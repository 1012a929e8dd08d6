# ruff: noqa
import torch

from diffusers import DiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor


class MyPipeline(DiffusionPipeline):
    def prepare_latents(self, shape, generator, device, dtype):
        return randn_tensor(shape, generator=generator, device=device, dtype=dtype)


def unrelated(shape):  # not called by a pipeline
    return torch.randn(shape)
