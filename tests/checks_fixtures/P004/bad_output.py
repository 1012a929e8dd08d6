# ruff: noqa
import torch

from diffusers import DiffusionPipeline


class NoLatentPipeline(DiffusionPipeline):
    @torch.no_grad()
    def __call__(self, prompt, output_type="pil"):  # <- P004
        image = self.vae.decode(self.denoise(prompt)).sample
        return self.image_processor.postprocess(image, output_type=output_type)


class DecodeFirstPipeline(DiffusionPipeline):
    @torch.no_grad()
    def __call__(self, prompt, output_type="pil", return_dict=True):
        latents = self.denoise(prompt)
        image = self.vae.decode(latents).sample  # <- P004
        if output_type == "latent":
            image = latents
        if return_dict:  # <- P004
            return (image,)
        return Output(images=image)


class NoOutputTypePipeline(DiffusionPipeline):
    @torch.no_grad()
    def __call__(self, prompt, return_dict=True):  # <- P004
        return self.vae.decode(self.denoise(prompt))
