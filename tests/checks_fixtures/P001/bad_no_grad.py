# ruff: noqa
import torch

from diffusers import DiffusionPipeline


class MyPipeline(DiffusionPipeline):
    def __call__(self, prompt):  # <- P001
        return prompt


class MyVariantPipeline(
    DiffusionPipeline,
):
    @torch.no_grad()
    def encode_prompt(self, prompt):
        return prompt

    def __call__(self, prompt):  # <- P001
        return self.encode_prompt(prompt)
