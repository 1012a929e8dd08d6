# ruff: noqa
import torch

from diffusers import DiffusionPipeline


class MyPipeline(DiffusionPipeline):
    _callback_tensor_inputs = ["latents"]

    @torch.no_grad()
    def __call__(
        self,
        prompt,
        guidance_scale=5.0,  # <- P002
        num_frames=16,  # <- P002
        sigmas=None,  # <- P002
        eta=0.0,  # <- P002
        clip_skip=None,  # <- P002
        callback_on_step_end=None,
        callback_on_step_end_tensor_inputs=["latents"],
    ):
        self.check_inputs(prompt, num_frames)
        num_frames = 16
        self._clip_skip = clip_skip
        sigmas = [1.0, 0.5]
        extra = self.prepare_extra_step_kwargs(eta)
        latents = self.denoise(prompt, num_frames, sigmas, **extra)
        if callback_on_step_end is not None:
            callback_kwargs = {}
            for k in callback_on_step_end_tensor_inputs:
                callback_kwargs[k] = locals()[k]
            callback_on_step_end(self, 0, 0, callback_kwargs)
        return latents

    def check_inputs(self, prompt, num_frames):
        if num_frames < 1:
            raise ValueError("num_frames")

    def prepare_extra_step_kwargs(self, eta):
        return {"eta": 0.0}
