# ruff: noqa
import torch

from diffusers import DiffusionPipeline


class MyPipeline(DiffusionPipeline):
    @torch.no_grad()
    def __call__(self, prompt, image):
        prompt_embeds, prompt_attention_mask = self.encode_prompt(prompt)
        prompt_attention_mask = torch.cat([prompt_attention_mask, prompt_attention_mask])
        mask, masked_image_latents = self.prepare_mask(image)  # inpainting masks are not attention masks
        return self.transformer(prompt_embeds, encoder_attention_mask=prompt_attention_mask)
