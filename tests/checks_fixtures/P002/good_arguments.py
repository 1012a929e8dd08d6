# ruff: noqa
import torch

from diffusers import DiffusionPipeline


class MyPipeline(DiffusionPipeline):
    _callback_tensor_inputs = ["latents", "prompt_embeds"]

    @property
    def guidance_scale(self):
        return self._guidance_scale

    @torch.no_grad()
    def __call__(self, prompt, guidance_scale=5.0, num_inference_steps=10, output_type="pil", return_dict=True,
                 prompt_embeds=None, callback_on_step_end=None, callback_on_step_end_tensor_inputs=["latents"],
                 max_sequence_length=128, seed=None):
        self._guidance_scale = guidance_scale
        if seed is not None:
            torch.manual_seed(seed)
        prompt_embeds = self.encode_prompt(prompt, prompt_embeds, max_sequence_length)
        latents = self.latents()
        for i in range(num_inference_steps):
            noise = self.transformer(latents, prompt_embeds)
            latents = latents + self.guidance_scale * noise
            if callback_on_step_end is not None:
                callback_kwargs = {k: locals()[k] for k in callback_on_step_end_tensor_inputs}
                callback_on_step_end(self, i, 0, callback_kwargs)
        if output_type == "latent":
            image = latents
        else:
            image = self.vae.decode(latents)
        self.maybe_free_model_hooks()
        if not return_dict:
            return (image,)
        return image

    def encode_prompt(self, prompt, prompt_embeds, max_sequence_length):
        if prompt_embeds is None:
            prompt_embeds = self.text_encoder(self.tokenizer(prompt, max_length=max_sequence_length))
        return prompt_embeds
