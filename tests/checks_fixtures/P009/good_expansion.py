# ruff: noqa
import torch

from diffusers import DiffusionPipeline


class MyPipeline(DiffusionPipeline):
    def encode_prompt(self, prompt, num_images_per_prompt=1):
        prompt_embeds, prompt_attention_mask, text_ids = self.text_encoder(prompt)
        prompt_embeds = prompt_embeds.repeat_interleave(num_images_per_prompt, dim=0)
        prompt_attention_mask = prompt_attention_mask.repeat(num_images_per_prompt, 1)
        return prompt_embeds, prompt_attention_mask, text_ids

    def prepare_ip_adapter_image_embeds(self, images, num_images_per_prompt):
        ip_adapter_image_embeds = []
        for single_image_embeds in images:
            single_image_embeds = torch.cat([single_image_embeds] * num_images_per_prompt, dim=0)
            ip_adapter_image_embeds.append(single_image_embeds)
        return ip_adapter_image_embeds
