# ruff: noqa
from diffusers import DiffusionPipeline


class MyPipeline(DiffusionPipeline):
    def __init__(self, vae, transformer):
        self.vae_scale_factor = 8  # <- P008
        self.latent_channels = 2**4  # <- P008

    def __call__(self, prompt):
        num_channels_latents = 16  # <- P008
        return num_channels_latents
