# ruff: noqa
from diffusers import DiffusionPipeline


class MyPipeline(DiffusionPipeline):
    def check_inputs(self, height, width):
        if height % 8 != 0:  # <- P011
            raise ValueError("height")
        if width % self.vae_scale_factor != 0:  # <- P011
            raise ValueError("width")

    def prepare_latents(self, height, width):
        return (height // (self.vae_scale_factor * 2), width // (self.vae_scale_factor * 2))
