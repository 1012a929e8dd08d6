# ruff: noqa
import torch

from diffusers import DiffusionPipeline


class MyPipeline(DiffusionPipeline):
    @torch.no_grad()
    def __call__(self, prompt):
        prompt_embeds, prompt_attention_mask = self.encode_prompt(prompt)  # <- P012
        prompt_attention_mask = torch.cat([prompt_attention_mask, prompt_attention_mask])
        noise = self.transformer(prompt_embeds, encoder_attention_mask=None)
        return noise
