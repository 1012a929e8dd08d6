"""Parity pair: the original latent-diffusion KL autoencoder (ldm Encoder/Decoder, from the
stable-diffusion-sdkit package) against diffusers' AutoencoderKL, with the mapping diffusers
ships in its single-file loader (convert_ldm_vae_checkpoint). Tiny config, random weights.

ldm's AutoencoderKL class needs pytorch-lightning, so the reference composes ldm's Encoder,
Decoder and the two 1x1 quant convs exactly as that class does (forward with the posterior mode).
"""

import torch
from diffusers import AutoencoderKL
from diffusers.loaders.single_file_utils import (
    convert_ldm_vae_checkpoint,
    create_vae_diffusers_config_from_ldm,
)
from torch import nn

DDCONFIG = {
    "double_z": True,
    "z_channels": 4,
    "resolution": 16,
    "in_channels": 3,
    "out_ch": 3,
    "ch": 32,
    "ch_mult": [1, 2],
    "num_res_blocks": 1,
    "attn_resolutions": [],
    "dropout": 0.0,
}
ORIGINAL_CONFIG = {"model": {"params": {"first_stage_config": {"params": {"ddconfig": DDCONFIG, "embed_dim": 4}}}}}


class LdmAutoencoderKL(nn.Module):
    def __init__(self):
        super().__init__()
        from ldm.modules.diffusionmodules.model import Decoder, Encoder

        self.encoder = Encoder(**DDCONFIG)
        self.decoder = Decoder(**DDCONFIG)
        self.quant_conv = nn.Conv2d(2 * DDCONFIG["z_channels"], 2 * 4, 1)
        self.post_quant_conv = nn.Conv2d(4, DDCONFIG["z_channels"], 1)

    def forward(self, x):
        moments = self.quant_conv(self.encoder(x))
        mean, _logvar = torch.chunk(moments, 2, dim=1)
        return self.decoder(self.post_quant_conv(mean))


def _diffusers_config():
    config = create_vae_diffusers_config_from_ldm(ORIGINAL_CONFIG, {"encoder.conv_in.weight": torch.zeros(1)}, image_size=16)
    return config


def reference():
    model = LdmAutoencoderKL()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model


def candidate():
    return AutoencoderKL(**_diffusers_config())


def convert(state_dict):
    return convert_ldm_vae_checkpoint(dict(state_dict), _diffusers_config())  # a copy: reads are not tracked, storage is


def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 16, 16, generator=g)
    return {"reference": {"x": x}, "candidate": {"sample": x}}
