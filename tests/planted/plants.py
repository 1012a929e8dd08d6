"""The planted corpus: real diffusers 0.42.1 files (tests/planted/base/*.py.txt, Apache-2.0, headers
kept) each given one bug of a recurring pattern, first plainly, then the way an LLM port tends to
hide it (through an alias, a helper, a variable, an expression, an overwrite, a validation-only
use, a store on self).

A plant is caught when checking the planted file gives a finding of its rule that checking the
untouched file does not. `benchmarks/checks_recall.py` prints recall per pattern and variant;
tests/test_checks_recall.py holds every plant to the result recorded here (`expect`).

Plants on `installed:<path>` edit a copy of the installed diffusers package (registration lives in
its `__init__` files and dummy objects); they are skipped, and said so, when the installed
version no longer has the text they edit.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Plant:
    id: str
    base: str  # a file under tests/planted/base (".py.txt" dropped), or "installed:<path in the package>"
    rule: str
    pattern: str  # the recurring bug family (review meta-issue patterns, conventions, tampering)
    variant: str  # "plain", or how it is hidden: alias | helper | variable | expression | overwrite | validate | store
    edits: tuple[tuple, ...]  # (exact text, replacement[, times]): the text is found exactly once (or `times`)
    target: str = ""  # for installed plants: the file to check (default: the edited one)
    expect: str = "caught"  # or "missed: <why>", an honest record of a known miss
    extra: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = field(default=())  # more installed files to edit

    @property
    def subtle(self) -> bool:
        return self.variant != "plain"


def P(id, base, rule, pattern, variant, *edits, **kw) -> Plant:
    return Plant(id, base, rule, pattern, variant, tuple(edits), **kw)


FLUX_SDPA_CALL = """        hidden_states = dispatch_attention_fn(
            query,
            key,
            value,
            attn_mask=attention_mask,
            backend=self._attention_backend,
            parallel_config=self._parallel_config,
        )
        hidden_states = hidden_states.flatten(2, 3)
        hidden_states = hidden_states.to(query.dtype)

        if encoder_hidden_states is not None:
            encoder_hidden_states, hidden_states = hidden_states.split_with_sizes("""

GRAD_BRANCH = """            if torch.is_grad_enabled() and self.gradient_checkpointing:
                encoder_hidden_states, hidden_states = self._gradient_checkpointing_func(
                    block,
                    hidden_states,
                    encoder_hidden_states,
                    temb,
                    image_rotary_emb,
                    joint_attention_kwargs,
                )

            else:
                encoder_hidden_states, hidden_states = block("""

FLUX_TAIL = "        if not return_dict:\n            return (output,)\n\n        return Transformer2DModelOutput(sample=output)"
WAN_TAIL = FLUX_TAIL
LTX_TAIL = "        if not return_dict:\n            return (output,)\n        return Transformer2DModelOutput(sample=output)"

PLANTS: list[Plant] = [
    # ---- attention dispatch (models.md#attention-dispatch) ------------------------------------
    P("flux-sdpa", "transformer_flux.py", "M002", "attention-dispatch", "plain",
      (FLUX_SDPA_CALL, FLUX_SDPA_CALL.replace("""dispatch_attention_fn(
            query,
            key,
            value,
            attn_mask=attention_mask,
            backend=self._attention_backend,
            parallel_config=self._parallel_config,
        )""", "F.scaled_dot_product_attention(\n            query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2), attn_mask=attention_mask\n        ).transpose(1, 2)"))),
    P("flux-sdpa-alias", "transformer_flux.py", "M002", "attention-dispatch", "alias",
      ("import torch.nn.functional as F\n", "import torch.nn.functional as F\nfrom torch.nn.functional import scaled_dot_product_attention as sdpa\n"),
      (FLUX_SDPA_CALL, FLUX_SDPA_CALL.replace("""dispatch_attention_fn(
            query,
            key,
            value,
            attn_mask=attention_mask,
            backend=self._attention_backend,
            parallel_config=self._parallel_config,
        )""", "sdpa(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2)).transpose(1, 2)"))),
    P("flux-sdpa-variable", "transformer_flux.py", "M002", "attention-dispatch", "variable",
      (FLUX_SDPA_CALL, FLUX_SDPA_CALL.replace("""dispatch_attention_fn(
            query,
            key,
            value,
            attn_mask=attention_mask,
            backend=self._attention_backend,
            parallel_config=self._parallel_config,
        )""", "attention_fn(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2)).transpose(1, 2)").replace(
          "        hidden_states = attention_fn(", "        attention_fn = torch.nn.functional.scaled_dot_product_attention\n        hidden_states = attention_fn("))),
    P("flux-softmax-attention", "transformer_flux.py", "M002", "attention-dispatch", "expression",
      (FLUX_SDPA_CALL, FLUX_SDPA_CALL.replace("""dispatch_attention_fn(
            query,
            key,
            value,
            attn_mask=attention_mask,
            backend=self._attention_backend,
            parallel_config=self._parallel_config,
        )""", "(\n            (query.transpose(1, 2) @ key.transpose(1, 2).transpose(-2, -1) * attn.head_dim**-0.5).softmax(dim=-1)\n            @ value.transpose(1, 2)\n        ).transpose(1, 2)"))),
    P("flux-backend-dropped", "transformer_flux.py", "M011", "attention-backend", "plain",
      (FLUX_SDPA_CALL, FLUX_SDPA_CALL.replace("            backend=self._attention_backend,\n", ""))),
    P("flux-backend-none", "transformer_flux.py", "M011", "attention-backend", "expression",
      (FLUX_SDPA_CALL, FLUX_SDPA_CALL.replace("backend=self._attention_backend", "backend=None"))),
    P("flux-processor-no-mixin", "transformer_flux.py", "M006", "attention-processor", "plain",
      ("class FluxAttention(torch.nn.Module, AttentionModuleMixin):", "class FluxAttention(torch.nn.Module):")),
    P("flux-processor-undeclared", "transformer_flux.py", "M006", "attention-processor", "expression",
      ("    _default_processor_cls = FluxAttnProcessor\n", "")),

    # ---- masks (review pattern 3) ---------------------------------------------------------------
    P("flux-mask-dropped", "transformer_flux.py", "M004", "mask-dropped", "plain",
      (FLUX_SDPA_CALL, FLUX_SDPA_CALL.replace("            attn_mask=attention_mask,\n", ""))),
    P("flux-mask-variable", "transformer_flux.py", "M004", "mask-dropped", "variable",
      (FLUX_SDPA_CALL, FLUX_SDPA_CALL.replace("            attn_mask=attention_mask,\n", "            attn_mask=None,\n").replace(
          "        hidden_states = dispatch_attention_fn(", "        mask = attention_mask\n        hidden_states = dispatch_attention_fn("))),
    P("ltx-mask-converted-not-passed", "transformer_ltx.py", "M004", "mask-dropped", "expression",
      ("""                    image_rotary_emb,
                    encoder_attention_mask,
                )""", """                    image_rotary_emb,
                    None,
                )"""),
      ("                    encoder_attention_mask=encoder_attention_mask,\n                )\n\n        scale_shift_values",
       "                    encoder_attention_mask=None,\n                )\n\n        scale_shift_values")),
    P("ltx-block-mask-helper", "transformer_ltx.py", "M004", "mask-dropped", "helper",
      ("            attention_mask=encoder_attention_mask,\n", "            attention_mask=None,\n")),
    P("sana-pipeline-mask-dropped", "pipeline_sana.py", "P012", "mask-dropped", "plain",
      ("                    encoder_attention_mask=prompt_attention_mask,\n", "")),
    P("ltx-pipeline-mask-none", "pipeline_ltx.py", "P012", "mask-dropped", "expression",
      ("                        encoder_attention_mask=prompt_attention_mask,\n", "                        encoder_attention_mask=None,\n")),

    # ---- public arguments accepted but ignored (review pattern 2) -------------------------------
    P("flux-joint-kwargs-ignored", "pipeline_flux.py", "P002", "ignored-argument", "plain",
      ("        self._joint_attention_kwargs = joint_attention_kwargs\n        self._current_timestep = None\n",
       "        self._joint_attention_kwargs = None\n        self._current_timestep = None\n")),
    P("flux-max-seq-validated-only", "pipeline_flux.py", "P002", "ignored-argument", "validate",
      ("""            device=device,
            num_images_per_prompt=num_images_per_prompt,
            max_sequence_length=max_sequence_length,
            lora_scale=lora_scale,
        )
        if do_true_cfg:""", """            device=device,
            num_images_per_prompt=num_images_per_prompt,
            lora_scale=lora_scale,
        )
        if do_true_cfg:"""),
      ("""                device=device,
                num_images_per_prompt=num_images_per_prompt,
                max_sequence_length=max_sequence_length,
                lora_scale=lora_scale,
            )""", """                device=device,
                num_images_per_prompt=num_images_per_prompt,
                lora_scale=lora_scale,
            )""")),
    P("flux-sigmas-overwritten", "pipeline_flux.py", "P002", "ignored-argument", "overwrite",
      ("        sigmas = np.linspace(1.0, 1 / num_inference_steps, num_inference_steps) if sigmas is None else sigmas\n",
       "        sigmas = np.linspace(1.0, 1 / num_inference_steps, num_inference_steps)\n")),
    P("sd-eta-helper-ignores", "pipeline_stable_diffusion.py", "P002", "ignored-argument", "helper",
      ('            extra_step_kwargs["eta"] = eta\n', '            extra_step_kwargs["eta"] = 0.0\n')),
    P("sd-clip-skip-stored", "pipeline_stable_diffusion.py", "P002", "ignored-argument", "store",
      ("            clip_skip=self.clip_skip,\n        )", "            clip_skip=None,\n        )")),
    P("sd-timesteps-variable", "pipeline_stable_diffusion.py", "P002", "ignored-argument", "variable",
      ("            self.scheduler, num_inference_steps, timestep_device, timesteps, sigmas\n        )",
       "            self.scheduler, num_inference_steps, timestep_device, None, sigmas\n        )\n        custom_timesteps = timesteps")),
    P("wan-videos-per-prompt-overwritten", "pipeline_wan.py", "P002", "ignored-argument", "overwrite",
      ("        # 3. Encode input prompt\n", "        # 3. Encode input prompt\n        num_videos_per_prompt = 1\n")),

    # ---- batch expansion (review pattern 1) -----------------------------------------------------
    P("sd-embeds-not-repeated", "pipeline_stable_diffusion.py", "P009", "batch-expansion", "plain",
      ("""        prompt_embeds = prompt_embeds.repeat(1, num_images_per_prompt, 1)
        prompt_embeds = prompt_embeds.view(bs_embed * num_images_per_prompt, seq_len, -1)
""", "")),
    P("sana-mask-not-repeated", "pipeline_sana.py", "P009", "batch-expansion", "expression",
      ("        prompt_attention_mask = prompt_attention_mask.repeat(num_images_per_prompt, 1)\n", "")),
    P("wan-embeds-repeat-one", "pipeline_wan.py", "P009", "batch-expansion", "expression",
      ("        prompt_embeds = prompt_embeds.repeat(1, num_videos_per_prompt, 1)\n        prompt_embeds = prompt_embeds.view(batch_size * num_videos_per_prompt, seq_len, -1)\n",
       "        prompt_embeds = prompt_embeds.repeat(1, 1, 1)\n        prompt_embeds = prompt_embeds.view(batch_size, seq_len, -1)\n")),

    # ---- dtype, device and config (review pattern 5) --------------------------------------------
    P("flux-latents-not-cast", "pipeline_flux.py", "P010", "dtype-device", "plain",
      ("            return latents.to(device=device, dtype=dtype), latent_image_ids\n", "            return latents, latent_image_ids\n")),
    P("wan-latents-device-only", "pipeline_wan.py", "P010", "dtype-device", "expression",
      ("            return latents.to(device=device, dtype=dtype)\n", "            return latents.to(device)\n")),
    P("flux-rope-float64", "transformer_flux.py", "M009", "dtype-device", "plain",
      ("        pos = ids.float()\n", "        pos = ids.double()\n")),
    P("flux-rope-float64-variable", "transformer_flux.py", "M009", "dtype-device", "variable",
      ("        freqs_dtype = maybe_adjust_dtype_for_device(torch.float64, ids.device)\n", "        freqs_dtype = torch.float64\n")),
    P("flux-rope-float64-helper", "transformer_flux.py", "M009", "dtype-device", "helper",
      ("        pos = ids.float()\n", "        pos = _positions(ids)\n"),
      ("class FluxPosEmbed(nn.Module):\n", "def _positions(ids):\n    return ids.to(torch.float64)\n\n\nclass FluxPosEmbed(nn.Module):\n")),
    P("flux-half-hardcoded", "transformer_flux.py", "M009", "dtype-device", "plain",
      ("        image_rotary_emb = self.pos_embed(ids)\n", "        image_rotary_emb = self.pos_embed(ids)\n        hidden_states = hidden_states.to(torch.bfloat16)\n")),
    P("flux-vae-scale-hardcoded", "pipeline_flux.py", "P008", "dtype-device", "plain",
      ('        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1) if getattr(self, "vae", None) else 8\n',
       "        self.vae_scale_factor = 8\n")),
    P("flux-vae-scale-expression", "pipeline_flux.py", "P008", "dtype-device", "expression",
      ('        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1) if getattr(self, "vae", None) else 8\n',
       "        self.vae_scale_factor = 2**3\n")),
    P("flux-latent-channels-hardcoded", "pipeline_flux.py", "P008", "dtype-device", "plain",
      ("        num_channels_latents = self.transformer.config.in_channels // 4\n", "        num_channels_latents = 16\n")),

    # ---- output and cleanup contracts (review pattern 6) ----------------------------------------
    P("flux-no-latent-output", "pipeline_flux.py", "P004", "output-contract", "plain",
      ('        if output_type == "latent":\n            image = latents\n        else:\n            latents = self._unpack_latents',
       '        if True:\n            latents = self._unpack_latents')),
    P("flux-latent-typo", "pipeline_flux.py", "P004", "output-contract", "expression",
      ('        if output_type == "latent":\n            image = latents\n', '        if output_type == "latents":\n            image = latents\n')),
    P("sd-decode-before-branch", "pipeline_stable_diffusion.py", "P004", "output-contract", "variable",
      ('        if not output_type == "latent":\n            image = self.vae.decode(',
       '        decoded = self.vae.decode(latents / self.vae.config.scaling_factor, return_dict=False)[0]\n        if not output_type == "latent":\n            image = self.vae.decode(')),
    P("flux-return-dict-inverted", "pipeline_flux.py", "P004", "output-contract", "expression",
      ("        if not return_dict:\n            return (image,)\n\n        return FluxPipelineOutput(images=image)",
       "        if return_dict:\n            return (image,)\n\n        return FluxPipelineOutput(images=image)")),
    P("sd-latent-return-leaks-hooks", "pipeline_stable_diffusion.py", "P005", "output-contract", "plain",
      ('        if not output_type == "latent":\n            image = self.vae.decode(',
       '        if output_type == "latent":\n            return StableDiffusionPipelineOutput(images=latents, nsfw_content_detected=None)\n        if not output_type == "latent":\n            image = self.vae.decode(')),
    P("flux-tuple-return-before-free", "pipeline_flux.py", "P005", "output-contract", "expression",
      ("        # Offload all models\n        self.maybe_free_model_hooks()\n\n        if not return_dict:\n            return (image,)\n",
       "        if not return_dict:\n            return (image,)\n        # Offload all models\n        self.maybe_free_model_hooks()\n")),

    # ---- validation vs runtime (review pattern 7) -----------------------------------------------
    P("flux-divisibility-hardcoded", "pipeline_flux.py", "P011", "validation", "plain",
      ("        if height % (self.vae_scale_factor * 2) != 0 or width % (self.vae_scale_factor * 2) != 0:",
       "        if height % 8 != 0 or width % 8 != 0:")),
    P("flux-divisibility-weak", "pipeline_flux.py", "P011", "validation", "expression",
      ("        if height % (self.vae_scale_factor * 2) != 0 or width % (self.vae_scale_factor * 2) != 0:",
       "        if height % self.vae_scale_factor != 0 or width % self.vae_scale_factor != 0:")),

    # ---- pipeline conventions (pipelines.md) ----------------------------------------------------
    P("flux-no-grad-missing", "pipeline_flux.py", "P001", "no-grad", "plain",
      ("    @torch.no_grad()\n    @replace_example_docstring(EXAMPLE_DOC_STRING)\n    def __call__(",
       "    @replace_example_docstring(EXAMPLE_DOC_STRING)\n    def __call__(")),
    P("flux-no-grad-on-helper", "pipeline_flux.py", "P001", "no-grad", "helper",
      ("    @torch.no_grad()\n    @replace_example_docstring(EXAMPLE_DOC_STRING)\n    def __call__(",
       "    @replace_example_docstring(EXAMPLE_DOC_STRING)\n    def __call__("),
      ("    def encode_prompt(\n", "    @torch.no_grad()\n    def encode_prompt(\n")),
    P("flux-randn", "pipeline_flux.py", "P003", "generator", "plain",
      ("        latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)\n",
       "        latents = torch.randn(shape, device=device, dtype=dtype)\n")),
    P("flux-randn-alias", "pipeline_flux.py", "P003", "generator", "alias",
      ("import numpy as np\nimport torch\n", "import numpy as np\nimport torch\nfrom torch import randn as sample_noise\n"),
      ("        latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)\n",
       "        latents = sample_noise(shape, device=device, dtype=dtype)\n")),
    P("flux-randn-generator-none", "pipeline_flux.py", "P003", "generator", "expression",
      ("        latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)\n",
       "        latents = randn_tensor(shape, generator=None, device=device, dtype=dtype)\n")),
    P("wan-noise-helper", "pipeline_wan.py", "P003", "generator", "helper",
      ("        latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)\n        return latents\n",
       "        latents = _noise(shape, device, dtype)\n        return latents\n"),
      ("class WanPipeline(DiffusionPipeline, WanLoraLoaderMixin):\n",
       "def _noise(shape, device, dtype):\n    return torch.randn(shape, device=device, dtype=dtype)\n\n\nclass WanPipeline(DiffusionPipeline, WanLoraLoaderMixin):\n")),
    P("sana-tqdm-loop", "pipeline_sana.py", "P006", "progress-bar", "plain",
      ("        with self.progress_bar(total=num_inference_steps) as progress_bar:\n",
       "        with tqdm(total=num_inference_steps) as progress_bar:\n")),
    P("wan-subclasses-flux", "pipeline_wan.py", "P007", "subclass", "plain",
      ("from ..pipeline_utils import DiffusionPipeline\n", "from ..flux.pipeline_flux import FluxPipeline\nfrom ..pipeline_utils import DiffusionPipeline\n"),
      ("class WanPipeline(DiffusionPipeline, WanLoraLoaderMixin):", "class WanPipeline(FluxPipeline, WanLoraLoaderMixin):")),
    P("wan-subclasses-alias", "pipeline_wan.py", "P007", "subclass", "alias",
      ("from ..pipeline_utils import DiffusionPipeline\n", "from ..flux.pipeline_flux import FluxPipeline as BasePipeline\nfrom ..pipeline_utils import DiffusionPipeline\n"),
      ("class WanPipeline(DiffusionPipeline, WanLoraLoaderMixin):", "class WanPipeline(BasePipeline, WanLoraLoaderMixin):")),

    # ---- model conventions and capability flags (models.md, review pattern 9) -------------------
    P("flux-no-register-to-config", "transformer_flux.py", "M003", "config-capture", "plain",
      ("    @register_to_config\n", "")),
    P("flux-config-mixin-alias", "transformer_flux.py", "M003", "config-capture", "alias",
      ("from ...configuration_utils import ConfigMixin, register_to_config\n", "from ...configuration_utils import ConfigMixin as Configurable\nfrom ...configuration_utils import register_to_config\n"),
      ("    ConfigMixin,\n", "    Configurable,\n"),
      ("    @register_to_config\n", "")),
    P("flux-checkpointing-branch-removed", "transformer_flux.py", "M007", "capability-flags", "plain",
      (GRAD_BRANCH, "            if False:\n                pass\n            else:\n                encoder_hidden_states, hidden_states = block(", 2)),
    P("flux-checkpointing-wrong-flag", "transformer_flux.py", "M007", "capability-flags", "variable",
      (GRAD_BRANCH, GRAD_BRANCH.replace("self.gradient_checkpointing", "self.use_checkpointing"), 2)),
    P("flux-no-split-typo", "transformer_flux.py", "M008", "capability-flags", "plain",
      ('    _no_split_modules = ["FluxTransformerBlock", "FluxSingleTransformerBlock"]', '    _no_split_modules = ["FluxTransformerBlocks", "FluxSingleTransformerBlock"]')),
    P("flux-repeated-blocks-stale", "transformer_flux.py", "M008", "capability-flags", "expression",
      ('    _repeated_blocks = ["FluxTransformerBlock", "FluxSingleTransformerBlock"]', '    _repeated_blocks = ["FluxDoubleStreamBlock", "FluxSingleTransformerBlock"]')),
    P("flux-layerwise-pattern-stale", "transformer_flux.py", "M008", "capability-flags", "expression",
      ('    _skip_layerwise_casting_patterns = ["pos_embed", "norm"]', '    _skip_layerwise_casting_patterns = ["rope_embedder", "norm"]')),
    P("wan-einops", "transformer_wan.py", "M001", "no-einops", "plain",
      ("import torch\n", "import torch\nfrom einops import rearrange\n")),
    P("wan-einops-alias", "transformer_wan.py", "M001", "no-einops", "alias",
      ("import torch\n", "import torch\nimport einops as eo\n")),
    P("flux-runtime-load", "transformer_flux.py", "M005", "runtime-loading", "plain",
      ("        self.gradient_checkpointing = False\n", "        self.gradient_checkpointing = False\n        self.load_state_dict(torch.load(\"flux.pt\"))\n")),
    P("flux-runtime-load-alias", "transformer_flux.py", "M005", "runtime-loading", "alias",
      ("import torch\n", "import torch\nfrom safetensors.torch import load_file as read_weights\n"),
      ("        self.gradient_checkpointing = False\n", "        self.gradient_checkpointing = False\n        self.load_state_dict(read_weights(\"flux.safetensors\"))\n")),
    P("wan-optional-import", "transformer_wan.py", "M010", "optional-dependency", "plain",
      ("import torch\n", "import torch\nimport flash_attn\n")),
    P("wan-optional-import-alias", "transformer_wan.py", "M010", "optional-dependency", "alias",
      ("import torch\n", "import torch\nfrom xformers import ops as xops\n")),

    # ---- copies (review pattern 8) --------------------------------------------------------------
    P("flux-copy-drifted", "pipeline_flux.py", "R002", "copy-divergence", "plain",
      ('        raise ValueError("Only one of `timesteps` or `sigmas` can be passed. Please choose one to set custom values")\n    if timesteps is not None:',
       '        raise ValueError("Only one of `timesteps` or `sigmas` can be passed.")\n    if timesteps is not None:')),
    P("sana-copy-drifted-default", "pipeline_sana.py", "R002", "copy-divergence", "expression",
      ("        accepts_eta = \"eta\" in set(inspect.signature(self.scheduler.step).parameters.keys())\n        extra_step_kwargs = {}",
       "        accepts_eta = \"eta\" in set(inspect.signature(self.scheduler.step).parameters)\n        extra_step_kwargs = {}")),
    P("flux-copy-unannotated", "pipeline_flux.py", "R003", "copy-divergence", "plain",
      ("# Copied from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion.retrieve_timesteps\n", "")),
    P("sana-copy-unannotated-method", "pipeline_sana.py", "R003", "copy-divergence", "helper",
      ("    # Copied from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion.StableDiffusionPipeline.prepare_extra_step_kwargs\n", "")),

    # ---- registration and lazy exports (review patterns 6 and 9), on the installed package ------
    P("model-missing-at-top-level", "installed:__init__.py", "R001", "registration", "plain",
      ('            "FluxTransformer2DModel",\n', ""), ("            FluxTransformer2DModel,\n", ""),
      target="installed:models/transformers/transformer_flux.py"),
    P("model-missing-type-checking", "installed:models/__init__.py", "R001", "registration", "expression",
      ("            FluxTransformer2DModel,\n", ""),
      target="installed:models/transformers/transformer_flux.py"),
    P("model-missing-dummy", "installed:utils/dummy_pt_objects.py", "R001", "registration", "helper",
      ("class FluxTransformer2DModel(metaclass=DummyObject):", "class FluxTransformer2DModelRemoved(metaclass=DummyObject):"),
      target="installed:models/transformers/transformer_flux.py"),
    P("pipeline-only-in-subpackage", "installed:pipelines/__init__.py", "R001", "registration", "plain",
      ('        "FluxFillPipeline",\n', ""), ("            FluxFillPipeline,\n", ""),
      target="installed:pipelines/flux/pipeline_flux_fill.py"),
    P("pipeline-wrong-module-key", "installed:pipelines/flux/__init__.py", "R001", "registration", "variable",
      ('    _import_structure["pipeline_flux_fill"] = ["FluxFillPipeline"]', '    _import_structure["pipeline_flux_fill_inpaint"] = ["FluxFillPipeline"]'),
      target="installed:pipelines/flux/pipeline_flux_fill.py"),
    P("init-half-missing", "installed:pipelines/flux/__init__.py", "R004", "registration", "plain",
      ("        from .pipeline_flux_fill import FluxFillPipeline\n", "")),
    P("dummy-missing", "installed:utils/dummy_pt_objects.py", "R005", "registration", "plain",
      ("class FluxTransformer2DModel(metaclass=DummyObject):", "class FluxTransformer2DModelRemoved(metaclass=DummyObject):"),
      target="installed:__init__.py"),

    # ---- tampering with the verdict (issue 12.3); every finding blocks a pass -------------------
    P("tamper-tool-import", "transformer_wan.py", "T001", "tampering", "plain",
      ("import torch\n", "import torch\nfrom sandbox.parity import engine\n")),
    P("tamper-tool-import-dynamic", "transformer_wan.py", "T001", "tampering", "expression",
      ("import torch\n", "import torch\n\n_harness = __import__(\"agent\")\n")),
    P("tamper-inspect-alias", "transformer_wan.py", "T002", "tampering", "alias",
      ("import torch\n", "import torch\nimport inspect as _i\n\n_caller = _i.stack()\n")),
    P("tamper-getframe-from-import", "transformer_wan.py", "T002", "tampering", "alias",
      ("import torch\n", "import torch\nfrom sys import _getframe\n")),
    P("tamper-getframe-getattr", "transformer_wan.py", "T002", "tampering", "expression",
      ("import torch\n", "import sys\n\nimport torch\n\n_frame = getattr(sys, \"_getframe\")(0)\n")),
    P("tamper-frame-variable", "transformer_wan.py", "T002", "tampering", "variable",
      ("import torch\n", "import sys\n\nimport torch\n\n_s = sys\n_caller = _s._getframe(1)\n")),
    P("tamper-exec", "transformer_wan.py", "T003", "tampering", "plain",
      ("import torch\n", "import torch\n\nexec(\"x = 1\")\n")),
    P("tamper-eval-variable", "transformer_wan.py", "T003", "tampering", "variable",
      ("import torch\n", "import torch\n\n_run = eval\n_value = _run(\"1 + 1\")\n")),
    P("tamper-pickle-alias", "transformer_wan.py", "T004", "tampering", "alias",
      ("import torch\n", "import pickle as pk\n\nimport torch\n")),
    P("tamper-subprocess", "transformer_wan.py", "T005", "tampering", "plain",
      ("import torch\n", "import subprocess\n\nimport torch\n")),
    P("tamper-os-system-alias", "transformer_wan.py", "T005", "tampering", "alias",
      ("import torch\n", "from os import system as run_shell\n\nimport torch\n")),
    P("tamper-env-read", "transformer_wan.py", "T006", "tampering", "plain",
      ("import torch\n", "import os\n\nimport torch\n\n_MODE = os.environ.get(\"PARITY\")\n")),
    P("tamper-open-file", "transformer_wan.py", "T006", "tampering", "expression",
      ("import torch\n", "import torch\n\n_REF = open(\"reference.pt\", \"rb\").read()\n")),
    P("tamper-patch-functional", "transformer_wan.py", "T007", "tampering", "plain",
      ("import torch\n", "import torch\nimport torch.nn.functional as F\n\nF.gelu = lambda x, approximate=\"none\": x\n")),
    P("tamper-setattr-torch", "transformer_wan.py", "T007", "tampering", "expression",
      ("import torch\n", "import torch\n\nsetattr(torch.nn.functional, \"silu\", torch.relu)\n")),
    P("tamper-patch-tensor-method", "transformer_wan.py", "T007", "tampering", "variable",
      ("import torch\n", "import torch\n\n_T = torch.Tensor\n_T.__add__ = torch.Tensor.__sub__\n")),
    P("tamper-print-at-import", "transformer_wan.py", "T008", "tampering", "plain",
      ("logger = logging.get_logger(__name__)", "logger = logging.get_logger(__name__)\nprint(\"loading WanTransformer3DModel\")")),
    P("tamper-seed-at-import-alias", "transformer_wan.py", "T008", "tampering", "alias",
      ("import torch\n", "import torch\nfrom torch import manual_seed as seed_everything\n\nseed_everything(0)\n")),
    P("tamper-default-dtype", "transformer_wan.py", "T008", "tampering", "plain",
      ("import torch\n", "import torch\n\ntorch.set_default_dtype(torch.float64)\n")),
    P("tamper-backends-setting", "transformer_wan.py", "T007", "tampering", "expression",
      ("import torch\n", "import torch\n\ntorch.backends.cuda.matmul.allow_tf32 = False\n")),
    P("tamper-compile-decorator", "transformer_wan.py", "T008", "tampering", "expression",
      ("def _get_qkv_projections(", "@torch.compile\ndef _get_qkv_projections(")),
    # ---- harder variants, written after the rules, and recorded as they came out ----------------
    P("sd-guidance-rescale-logged-only", "pipeline_stable_diffusion.py", "P002", "ignored-argument", "validate",
      ("                    noise_pred = rescale_noise_cfg(noise_pred, noise_pred_text, guidance_rescale=self.guidance_rescale)\n",
       "                    noise_pred = rescale_noise_cfg(noise_pred, noise_pred_text, guidance_rescale=0.7)\n"),
      expect="missed: the value still decides whether the rescale branch runs, which counts as a use"),
    P("flux-generator-replaced", "pipeline_flux.py", "P002", "ignored-argument", "helper",
      ("        latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)\n",
       "        latents = randn_tensor(shape, generator=torch.Generator(device=\"cpu\").manual_seed(0), device=device, dtype=dtype)\n"),
),
    P("sd-negative-not-repeated", "pipeline_stable_diffusion.py", "P009", "batch-expansion", "plain",
      ("            negative_prompt_embeds = negative_prompt_embeds.repeat(1, num_images_per_prompt, 1)\n            negative_prompt_embeds = negative_prompt_embeds.view(batch_size * num_images_per_prompt, seq_len, -1)\n", "")),
    P("sd-embeds-repeated-by-batch", "pipeline_stable_diffusion.py", "P009", "batch-expansion", "variable",
      ("        prompt_embeds = prompt_embeds.repeat(1, num_images_per_prompt, 1)\n        prompt_embeds = prompt_embeds.view(bs_embed * num_images_per_prompt, seq_len, -1)\n",
       "        prompt_embeds = prompt_embeds.repeat(1, 2, 1)\n        prompt_embeds = prompt_embeds.view(bs_embed * 2, seq_len, -1)\n")),
    P("wan-mask-used-for-shape-only", "transformer_wan.py", "M004", "mask-dropped", "expression",
      ("            attn_mask=attention_mask,\n            dropout_p=0.0,\n            is_causal=False,\n",
       "            attn_mask=None if attention_mask is None else None,\n            dropout_p=0.0,\n            is_causal=attention_mask is not None and attention_mask.shape[-1] < 0,\n"),
      expect="missed: a mask whose shape or presence still reaches the call counts as used"),
    P("flux-decode-in-helper", "pipeline_flux.py", "P004", "output-contract", "helper",
      ('        if output_type == "latent":\n            image = latents\n        else:\n            latents = self._unpack_latents(latents, height, width, self.vae_scale_factor)\n            latents = (latents / self.vae.config.scaling_factor) + self.vae.config.shift_factor\n            latents = latents.to(get_module_execution_device(self.vae))\n            image = self.vae.decode(latents, return_dict=False)[0]\n            image = self.image_processor.postprocess(image, output_type=output_type)\n',
       '        image = self._to_image(latents, height, width)\n        if output_type == "latent":\n            image = latents\n        else:\n            image = self.image_processor.postprocess(image, output_type=output_type)\n'),
      ("    @property\n    def guidance_scale(self):\n        return self._guidance_scale\n",
       "    def _to_image(self, latents, height, width):\n        latents = self._unpack_latents(latents, height, width, self.vae_scale_factor)\n        latents = (latents / self.vae.config.scaling_factor) + self.vae.config.shift_factor\n        return self.vae.decode(latents, return_dict=False)[0]\n\n    @property\n    def guidance_scale(self):\n        return self._guidance_scale\n")),
    P("flux-divisibility-check-removed", "pipeline_flux.py", "P011", "validation", "plain",
      ("        if height % (self.vae_scale_factor * 2) != 0 or width % (self.vae_scale_factor * 2) != 0:\n            logger.warning(\n",
       "        if False:\n            logger.warning(\n"),
      expect="missed: a check that is absent is not reported, only one with the wrong divisor"),
    P("ltx-mask-wrong-keyword", "pipeline_ltx.py", "P012", "mask-dropped", "variable",
      ("                        encoder_attention_mask=prompt_attention_mask,\n", "                        attention_kwargs={\"mask\": prompt_attention_mask},\n"),
      expect="missed: a mask handed to the transformer under another name still reaches a call"),
    P("flux-sdpa-legacy-bmm", "transformer_flux.py", "M002", "attention-dispatch", "expression",
      (FLUX_SDPA_CALL, FLUX_SDPA_CALL.replace("""dispatch_attention_fn(
            query,
            key,
            value,
            attn_mask=attention_mask,
            backend=self._attention_backend,
            parallel_config=self._parallel_config,
        )""", "torch.bmm(\n            torch.baddbmm(\n                torch.empty(1), query.flatten(0, 1), key.flatten(0, 1).transpose(-1, -2), beta=0\n            ).softmax(dim=-1),\n            value.flatten(0, 1),\n        ).view_as(query)"))),
    P("flux-float64-numpy", "transformer_flux.py", "M009", "dtype-device", "alias",
      ("        pos = ids.float()\n", "        pos = torch.from_numpy(np.arange(ids.shape[0], dtype=np.float64)).to(ids.device)[:, None] + ids\n")),
    P("flux-copy-comment-edited", "pipeline_flux.py", "R002", "copy-divergence", "expression",
      ('        raise ValueError("Only one of `timesteps` or `sigmas` can be passed. Please choose one to set custom values")\n    if timesteps is not None:',
       '        raise ValueError("Only one of `timesteps` or `sigmas` can be passed. Please choose one to set custom values")\n    # custom timesteps first\n    if timesteps is not None:')),
    P("tamper-builtins-getattr", "transformer_wan.py", "T002", "tampering", "expression",
      ("import torch\n", "import torch\n\n_run = getattr(__builtins__, \"ex\" + \"ec\")\n")),
    P("tamper-importlib-computed", "transformer_wan.py", "T003", "tampering", "expression",
      ("import torch\n", "import importlib\n\nimport torch\n\n_engine = importlib.import_module(\"sand\" + \"box.parity\")\n")),
    P("tamper-seed-in-forward", "transformer_wan.py", "T008", "tampering", "helper",
      ("        attn_output = self.attn1(norm_hidden_states, None, None, rotary_emb)\n",
       "        torch.manual_seed(0)\n        attn_output = self.attn1(norm_hidden_states, None, None, rotary_emb)\n"),
      expect="missed: T008 looks at what runs on import; a global seed set inside forward is not refused"),
    # ---- model forward/output contract and model-class conventions (issue 14.7: M012-M017) ---------
    P("flux-forward-no-return-dict", "transformer_flux.py", "M012", "model-output-contract", "plain",
      ("        return_dict: bool = True,\n        controlnet_blocks_repeat", "        controlnet_blocks_repeat"),
      (FLUX_TAIL, "        return Transformer2DModelOutput(sample=output)")),
    P("wan-return-dict-overwritten", "transformer_wan.py", "M012", "model-output-contract", "overwrite",
      (WAN_TAIL, "        return_dict = True  # callers always want the dataclass\n" + WAN_TAIL)),
    P("ltx-return-dict-validated-only", "transformer_ltx.py", "M012", "model-output-contract", "validate",
      (LTX_TAIL, "        if not isinstance(return_dict, bool):\n            raise ValueError(\"return_dict must be a bool\")\n"
                 "        return Transformer2DModelOutput(sample=output)")),
    P("flux-return-dict-stored-in-variable", "transformer_flux.py", "M012", "model-output-contract", "variable",
      (FLUX_TAIL, "        as_tuple = not return_dict\n        return Transformer2DModelOutput(sample=output)")),
    P("wan-return-dict-same-both-paths", "transformer_wan.py", "M012", "model-output-contract", "expression",
      (WAN_TAIL, WAN_TAIL.replace("return (output,)", "return Transformer2DModelOutput(sample=output)"))),
    P("flux-forward-returns-tensor", "transformer_flux.py", "M013", "model-output-contract", "plain",
      (FLUX_TAIL, FLUX_TAIL.replace("return Transformer2DModelOutput(sample=output)", "return output"))),
    P("wan-forward-returns-through-helper", "transformer_wan.py", "M013", "model-output-contract", "helper",
      ("    @apply_lora_scale(\"attention_kwargs\")\n    def forward(",
       "    def _pack(self, output):\n        return (output,)\n\n    @apply_lora_scale(\"attention_kwargs\")\n    def forward("),
      (WAN_TAIL, WAN_TAIL.replace("return Transformer2DModelOutput(sample=output)", "return self._pack(output)"))),
    P("ltx-forward-returns-conditional-tuple", "transformer_ltx.py", "M013", "model-output-contract", "variable",
      (LTX_TAIL, "        out = output if not return_dict else (output,)\n        return out")),
    P("flux-forward-returns-dict", "transformer_flux.py", "M013", "model-output-contract", "expression",
      (FLUX_TAIL, FLUX_TAIL.replace("return Transformer2DModelOutput(sample=output)", "return {\"sample\": output}"))),
    P("ltx-forward-returns-tuple-call", "transformer_ltx.py", "M013", "model-output-contract", "alias",
      ("import torch\n", "import torch\n\npack = tuple\n"),
      (LTX_TAIL, "        if not return_dict:\n            return pack([output])\n        return pack([output])")),
    P("wan-forward-research-names", "transformer_wan.py", "M014", "model-argument-names", "plain",
      ("        hidden_states: torch.Tensor,\n        timestep: torch.LongTensor,\n        encoder_hidden_states: torch.Tensor,\n        encoder_hidden_states_image",
       "        x: torch.Tensor,\n        t: torch.LongTensor,\n        context: torch.Tensor,\n        encoder_hidden_states_image")),
    P("ltx-forward-keyword-only-label", "transformer_ltx.py", "M014", "model-argument-names", "variable",
      ("        attention_kwargs: dict[str, Any] | None = None,\n        return_dict: bool = True,\n    ) -> torch.Tensor:",
       "        attention_kwargs: dict[str, Any] | None = None,\n        return_dict: bool = True,\n        *,\n        y: torch.Tensor | None = None,\n    ) -> torch.Tensor:")),
    P("ltx-forward-text-embedding-name", "transformer_ltx.py", "M014", "model-argument-names", "expression",
      ("        hidden_states: torch.Tensor,\n        encoder_hidden_states: torch.Tensor,\n        timestep: torch.LongTensor,\n        encoder_attention_mask",
       "        hidden_states: torch.Tensor,\n        text_emb: torch.Tensor,\n        timestep: torch.LongTensor,\n        encoder_attention_mask"),
      expect="missed: only research names diffusers never uses for a model input are listed; `text_emb` is not among them"),
    P("ltx-docstring-without-section", "transformer_ltx.py", "M015", "model-docstring", "plain",
      ("\n    Args:\n        in_channels (`int`, defaults to `128`):", "\n        in_channels (`int`, defaults to `128`):")),
    P("wan-no-class-docstring", "transformer_wan.py", "M015", "model-docstring", "plain",
      ('    r"""\n    A Transformer model for video-like data used in the Wan model.\n', '    r"""A Transformer model for video-like data used in the Wan model."""\n    _notes = """\n')),
    P("flux-docstring-as-variable", "transformer_flux.py", "M015", "model-docstring", "variable",
      ('    """\n    The Transformer model introduced in Flux.\n', '    __doc_text__ = """\n    The Transformer model introduced in Flux.\n')),
    P("flux-no-gradient-checkpointing", "transformer_flux.py", "M016", "model-gradient-checkpointing", "plain",
      ("    _supports_gradient_checkpointing = True\n    _no_split_modules = [\"FluxTransformerBlock\"", "    _no_split_modules = [\"FluxTransformerBlock\"")),
    P("ltx-no-gradient-checkpointing-aliased-list", "transformer_ltx.py", "M016", "model-gradient-checkpointing", "alias",
      ("    _supports_gradient_checkpointing = True\n    _skip_layerwise_casting_patterns", "    _skip_layerwise_casting_patterns"),
      ("import torch\n", "import torch\nfrom torch.nn import ModuleList as Stack\n"),
      ("        self.transformer_blocks = nn.ModuleList(", "        self.transformer_blocks = Stack(")),
    P("wan-no-gradient-checkpointing-list-variable", "transformer_wan.py", "M016", "model-gradient-checkpointing", "variable",
      ("    _supports_gradient_checkpointing = True\n", ""),
      ("        self.blocks = nn.ModuleList(", "        blocks = nn.ModuleList("),
      ("                for _ in range(num_layers)\n            ]\n        )\n",
       "                for _ in range(num_layers)\n            ]\n        )\n        self.blocks = blocks\n")),
    P("flux-class-named-attention", "transformer_flux.py", "M017", "model-class-names", "plain",
      ("FluxAttention", "Attention", 8)),
    P("wan-class-named-feedforward", "transformer_wan.py", "M017", "model-class-names", "plain",
      ("@maybe_allow_in_graph\nclass WanTransformerBlock(nn.Module):", "class FeedForward(nn.Module):\n    def __init__(self, dim):\n        super().__init__()\n        self.net = nn.Linear(dim, dim)\n\n\n@maybe_allow_in_graph\nclass WanTransformerBlock(nn.Module):")),
    P("ltx-model-named-like-an-export", "transformer_ltx.py", "M017", "model-class-names", "expression",
      ("LTXVideoTransformer3DModel", "DiTTransformer2DModel", 2)),
    P("wan-shadow-through-alias", "transformer_wan.py", "M017", "model-class-names", "alias",
      ("class WanTransformer3DModel(", "PatchEmbed = WanRotaryPosEmbed\n\n\nclass WanTransformer3DModel(")),
]
