# ruff: noqa
from diffusers import DiffusionPipeline


class MyPipeline(DiffusionPipeline):
    def __init__(self, vae, transformer):
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1) if getattr(self, "vae", None) else 8

    def __call__(self, prompt):
        num_channels_latents = self.transformer.config.in_channels // 4
        return num_channels_latents


def not_a_pipeline():
    vae_scale_factor = 8
    return vae_scale_factor
