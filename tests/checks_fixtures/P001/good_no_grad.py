# ruff: noqa
import torch
from torch import no_grad

from diffusers import DiffusionPipeline


class MyPipeline(DiffusionPipeline):
    @torch.no_grad()
    def __call__(self, prompt):
        return prompt


class AliasPipeline(DiffusionPipeline):
    @no_grad()
    def __call__(self, prompt):
        return prompt


class GuidedPipeline(DiffusionPipeline):
    def __call__(self, x):  # guidance by gradients needs autograd
        x = x.detach().requires_grad_()
        grad = torch.autograd.grad(self.value(x).sum(), [x])[0]
        return x + grad


class OnnxMyPipeline(DiffusionPipeline):
    def __call__(self, prompt):
        return prompt
