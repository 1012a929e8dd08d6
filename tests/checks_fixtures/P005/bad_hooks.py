# ruff: noqa
import torch

from diffusers import DiffusionPipeline


class MyPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "transformer->vae"

    @torch.no_grad()
    def __call__(self, prompt, output_type="pil", return_dict=True):
        latents = self.denoise(prompt)
        if output_type == "latent":
            return latents  # <- P005
        image = self.vae.decode(latents)
        if not return_dict:
            return (image,)  # <- P005
        self.maybe_free_model_hooks()
        return image
