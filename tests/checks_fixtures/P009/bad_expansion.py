# ruff: noqa
from diffusers import DiffusionPipeline


class MyPipeline(DiffusionPipeline):
    def encode_prompt(self, prompt, num_images_per_prompt=1):
        prompt_embeds, prompt_attention_mask = self.text_encoder(prompt)
        prompt_embeds = prompt_embeds.repeat(num_images_per_prompt, 1, 1)
        return prompt_embeds, prompt_attention_mask  # <- P009

    def encode_image(self, image, num_images_per_prompt):
        image_embeds = self.image_encoder(image)
        image_embeds = image_embeds.repeat(2, 1, 1)
        return image_embeds  # <- P009
