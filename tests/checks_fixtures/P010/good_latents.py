# ruff: noqa
from diffusers import DiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor


class MyPipeline(DiffusionPipeline):
    def prepare_latents(self, shape, dtype, device, generator, latents=None):
        if latents is not None:
            return latents.to(device=device, dtype=dtype)
        return randn_tensor(shape, generator=generator, device=device, dtype=dtype)
