"""Parity pair: the original latent-diffusion UNet (ldm, from the stable-diffusion-sdkit package)
against diffusers' UNet2DConditionModel, with the weight mapping diffusers ships in its
single-file loader (convert_ldm_unet_checkpoint). Tiny SD2-style config, random weights."""

import torch
from diffusers import UNet2DConditionModel
from diffusers.loaders.single_file_utils import (
    convert_ldm_unet_checkpoint,
    create_unet_diffusers_config_from_ldm,
)

UNET = {
    "image_size": 8,
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 32,
    "attention_resolutions": [1],
    "num_res_blocks": 1,
    "channel_mult": [1, 2],
    "num_head_channels": 16,
    "use_spatial_transformer": True,
    "use_linear_in_transformer": True,
    "transformer_depth": 1,
    "context_dim": 24,
    "legacy": False,
}
ORIGINAL_CONFIG = {
    "model": {
        "params": {
            "unet_config": {"params": UNET},
            "first_stage_config": {"params": {"ddconfig": {"ch_mult": [1, 2, 4, 4]}}},
        }
    }
}
PREFIX = "model.diffusion_model."


def _diffusers_config():
    fake_checkpoint = {PREFIX + "input_blocks.0.0.weight": torch.zeros(32, 4, 3, 3)}
    config = create_unet_diffusers_config_from_ldm(ORIGINAL_CONFIG, fake_checkpoint)
    config["sample_size"] = UNET["image_size"]
    return config


def reference():
    from ldm.modules.diffusionmodules.openaimodel import UNetModel

    model = UNetModel(**UNET)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():  # zero-initialised output convs would hide a wrong port, and at
            # small scales attention is nearly uniform, so q/k mistakes would be invisible
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model


def candidate():
    return UNet2DConditionModel(**_diffusers_config())


def convert(state_dict):
    checkpoint = {PREFIX + k: v for k, v in state_dict.items()}
    return convert_ldm_unet_checkpoint(checkpoint, _diffusers_config())


def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 8, 8, generator=g)
    t = torch.tensor([10, 700])
    context = torch.randn(2, 5, 24, generator=g)
    return {
        "reference": {"x": x, "timesteps": t, "context": context},
        "candidate": {"sample": x, "timestep": t, "encoder_hidden_states": context},
    }
