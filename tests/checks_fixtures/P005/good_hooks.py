# ruff: noqa
import torch

from diffusers import DiffusionPipeline


class MyPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "transformer->vae"

    @torch.no_grad()
    def __call__(self, prompt, output_type="pil", return_dict=True):
        latents = self.denoise(prompt)
        image = latents if output_type == "latent" else self.vae.decode(latents)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (image,)
        return image


class NoOffloadPipeline(DiffusionPipeline):  # no model_cpu_offload_seq: no hooks to free
    @torch.no_grad()
    def __call__(self, prompt):
        return self.denoise(prompt)
