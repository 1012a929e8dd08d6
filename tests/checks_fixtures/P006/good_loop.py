# ruff: noqa
import torch

from diffusers import DiffusionPipeline


class MyPipeline(DiffusionPipeline):
    @torch.no_grad()
    def __call__(self, latents, timesteps):
        with self.progress_bar(total=len(timesteps)) as progress_bar:
            for i, t in enumerate(timesteps):
                latents = self.scheduler.step(latents, t)
                progress_bar.update()
        for t in self.progress_bar(timesteps):
            latents = self.scheduler.step(latents, t)
        for t in timesteps:  # counting, no scheduler step
            latents = latents * 1
        return latents
