# ruff: noqa
import torch

from diffusers import DiffusionPipeline


class MyPipeline(DiffusionPipeline):
    @torch.no_grad()
    def __call__(self, prompt, output_type="pil", return_dict=True):
        latents = self.denoise(prompt)
        if output_type == "latent":
            image = latents
        else:
            image = self._decode(latents)
            image = self.image_processor.postprocess(image, output_type=output_type)
        if not return_dict:
            return (image,)
        return Output(images=image)

    def _decode(self, latents):
        return self.vae.decode(latents).sample


class CombinedPipeline(DiffusionPipeline):
    @torch.no_grad()
    def __call__(self, prompt, output_type="pil", return_dict=True):
        return self.decoder_pipe(prompt, output_type=output_type, return_dict=return_dict)
