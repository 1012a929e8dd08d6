# ruff: noqa
from diffusers import DiffusionPipeline


class MyPipeline(DiffusionPipeline):
    def check_inputs(self, height, width):
        if height % (self.vae_scale_factor * 2) != 0 or width % (self.vae_scale_factor * 2) != 0:
            raise ValueError("size")

    def prepare_latents(self, latents, height, width, patch_size):
        batch, channels, h, w = latents.shape
        packed = (h // patch_size, w // patch_size)
        return (height // (self.vae_scale_factor * 2), width // (self.vae_scale_factor * 2), packed)
