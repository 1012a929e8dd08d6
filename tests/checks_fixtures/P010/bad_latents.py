# ruff: noqa
from diffusers import DiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor


class MyPipeline(DiffusionPipeline):
    def prepare_latents(self, shape, dtype, device, generator, latents=None):  # <- P010
        if latents is None:
            return randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        return latents.to(device)
