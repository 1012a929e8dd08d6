# ruff: noqa
import torch
from tqdm import tqdm

from diffusers import DiffusionPipeline


class MyPipeline(DiffusionPipeline):
    @torch.no_grad()
    def __call__(self, latents, timesteps):
        for i, t in enumerate(timesteps):  # <- P006
            latents = self.scheduler.step(latents, t)
        with tqdm(total=len(timesteps)) as bar:
            for t in self.scheduler.timesteps:  # <- P006
                latents = self.scheduler.step(latents, t)
        return latents
