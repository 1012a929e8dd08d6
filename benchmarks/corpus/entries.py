"""The real-model corpus: published diffusion backbones, each laid out like a Hub repo.

One row per model: which PyPI release carries its code (pinned by the wheel's sha256), which of
the wheel's files the model needs (copied unmodified, at the path the package gives them, so
relative imports work as published), the constructor arguments for config.json (the authors'
argument names, small sizes so a CPU runs it in seconds) and the forward inputs the build uses to
check that the seeded weights give a finite, non-constant output.

`placeholders` are package `__init__.py` files the build writes empty because the published one
imports the package's trainer, evaluation or datasets (and their heavy dependencies); the model
card lists them. `requires` are the third-party import names the model needs at run time beyond
torch, numpy and einops (benchmarks/corpus/requirements.txt installs them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Entry:
    name: str
    family: str
    summary: str
    package: str
    version: str
    wheel_sha256: str
    license: str
    license_files: tuple[str, ...]
    files: tuple[str, ...]
    module: str
    cls: str
    config: dict[str, Any]
    inputs: str
    requires: tuple[str, ...] = ()
    placeholders: dict[str, str] = field(default_factory=dict)
    factory: str | None = None
    homepage: str = ""


TRAINER_INIT = "the published __init__ imports the package's trainer and samplers (accelerate, ema-pytorch, pytorch-fid, ...)"

DDP = dict(
    package="denoising-diffusion-pytorch",
    version="2.3.4",
    wheel_sha256="1f779c01c9b77e45a63f2e6cd54c0e8e8bd6725f564a44fe3ee15795ef5bded2",
    license="MIT",
    license_files=("denoising_diffusion_pytorch-2.3.4.dist-info/licenses/LICENSE",),
    homepage="https://github.com/lucidrains/denoising-diffusion-pytorch",
)

ENTRIES: list[Entry] = [
    Entry(
        name="ldm-unet",
        family="U-Net (cross-attention)",
        summary="the original latent-diffusion / Stable Diffusion 2 UNetModel with SpatialTransformer blocks",
        package="stable-diffusion-sdkit",
        version="2.1.5",
        wheel_sha256="552075efc72e81182b34a0c7b6579202a24d1d6cd6712a11979bf81d106625a4",
        license="MIT",
        license_files=("stable_diffusion_sdkit-2.1.5.dist-info/LICENSE",),
        homepage="https://github.com/Stability-AI/stablediffusion",
        files=(
            "ldm/__init__.py",
            "ldm/util.py",
            "ldm/modules/__init__.py",
            "ldm/modules/attention.py",
            "ldm/modules/diffusionmodules/__init__.py",
            "ldm/modules/diffusionmodules/openaimodel.py",
            "ldm/modules/diffusionmodules/util.py",
        ),
        module="ldm.modules.diffusionmodules.openaimodel",
        cls="UNetModel",
        config={
            "image_size": 8, "in_channels": 4, "out_channels": 4, "model_channels": 32,
            "attention_resolutions": [1], "num_res_blocks": 1, "channel_mult": [1, 2], "num_head_channels": 16,
            "use_spatial_transformer": True, "use_linear_in_transformer": True, "transformer_depth": 1,
            "context_dim": 24, "legacy": False,
        },
        inputs="""
def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(2, 4, 8, 8, generator=g), "timesteps": torch.randint(0, 1000, (2,), generator=g),
            "context": torch.randn(2, 8, 24, generator=g)}
""",
    ),
    Entry(
        name="karras-unet",
        family="U-Net (EDM2 magnitude-preserving)",
        summary="KarrasUnet, the magnitude-preserving U-Net of EDM2 (Karras et al. 2024), config G",
        **DDP,
        files=("denoising_diffusion_pytorch/__init__.py", "denoising_diffusion_pytorch/karras_unet.py", "denoising_diffusion_pytorch/attend.py"),
        placeholders={"denoising_diffusion_pytorch/__init__.py": TRAINER_INIT},
        module="denoising_diffusion_pytorch.karras_unet",
        cls="KarrasUnet",
        config={
            "image_size": 16, "dim": 16, "dim_max": 32, "channels": 3, "num_downsamples": 2,
            "num_blocks_per_stage": 1, "attn_res": [8], "attn_dim_head": 8, "dropout": 0.0,
        },
        inputs="""
def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(2, 3, 16, 16, generator=g), "time": torch.rand(2, generator=g)}
""",
    ),
    Entry(
        name="uvit",
        family="U-ViT (conv U-Net around a transformer)",
        summary="UViT from 'simple diffusion' (Hoogeboom et al. 2023)",
        **DDP,
        files=("denoising_diffusion_pytorch/__init__.py", "denoising_diffusion_pytorch/simple_diffusion.py"),
        placeholders={"denoising_diffusion_pytorch/__init__.py": TRAINER_INIT},
        module="denoising_diffusion_pytorch.simple_diffusion",
        cls="UViT",
        config={
            "dim": 32, "dim_mults": [1, 2], "channels": 3, "vit_depth": 1, "vit_dropout": 0.0,
            "attn_dim_head": 16, "attn_heads": 2, "ff_mult": 2,
        },
        inputs="""
def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(2, 3, 16, 16, generator=g), "time": torch.rand(2, generator=g)}
""",
    ),
    Entry(
        name="karras-unet-3d",
        family="video 3-D U-Net (factorized space/time attention)",
        summary="KarrasUnet3D, the EDM2 U-Net for video with factorized space-time attention",
        **DDP,
        files=("denoising_diffusion_pytorch/__init__.py", "denoising_diffusion_pytorch/karras_unet_3d.py", "denoising_diffusion_pytorch/attend.py"),
        placeholders={"denoising_diffusion_pytorch/__init__.py": TRAINER_INIT},
        module="denoising_diffusion_pytorch.karras_unet_3d",
        cls="KarrasUnet3D",
        config={
            "image_size": 16, "frames": 4, "dim": 16, "dim_max": 32, "channels": 3, "num_downsamples": 2,
            "num_blocks_per_stage": 1, "attn_res": [8], "attn_dim_head": 8, "dropout": 0.0,
            "factorize_space_time_attn": True,
        },
        inputs="""
def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(2, 3, 4, 16, 16, generator=g), "time": torch.rand(2, generator=g)}
""",
    ),
    Entry(
        name="make-a-video",
        family="video pseudo-3-D U-Net (axial space/time attention)",
        summary="SpaceTimeUnet of Make-A-Video (Singer et al. 2022): pseudo-3D convolutions, spatial then temporal attention",
        package="make-a-video-pytorch",
        version="0.4.0",
        wheel_sha256="db4605e37e033c8a0e3d0235f5056538dbac4a95e9a217f21b568b0dd958ed8d",
        license="MIT",
        license_files=("make_a_video_pytorch-0.4.0.dist-info/LICENSE",),
        homepage="https://github.com/lucidrains/make-a-video-pytorch",
        files=("make_a_video_pytorch/__init__.py", "make_a_video_pytorch/make_a_video.py", "make_a_video_pytorch/attend.py"),
        module="make_a_video_pytorch.make_a_video",
        cls="SpaceTimeUnet",
        config={
            "dim": 16, "channels": 3, "dim_mult": [1, 2], "self_attns": [False, True],
            "temporal_compression": [False, True], "resnet_block_depths": [1, 1],
            "attn_dim_head": 8, "attn_heads": 2, "condition_on_timestep": True,
        },
        requires=("packaging",),
        inputs="""
def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(2, 3, 4, 16, 16, generator=g), "timestep": torch.rand(2, generator=g)}
""",
    ),
    Entry(
        name="video-diffusion-unet3d",
        family="video 3-D U-Net (rotary temporal attention)",
        summary="Unet3D of Video Diffusion Models (Ho et al. 2022) with rotary embeddings on the temporal attention",
        package="video-diffusion-pytorch",
        version="0.7.0",
        wheel_sha256="0bd32caec85a83505b15d0001e0d99e35699f56401fa22d2ddd53ae224c8e493",
        license="MIT",
        license_files=("video_diffusion_pytorch-0.7.0.dist-info/LICENSE",),
        homepage="https://github.com/lucidrains/video-diffusion-pytorch",
        files=(
            "video_diffusion_pytorch/__init__.py",
            "video_diffusion_pytorch/video_diffusion_pytorch.py",
            "video_diffusion_pytorch/text.py",
        ),
        module="video_diffusion_pytorch.video_diffusion_pytorch",
        cls="Unet3D",
        config={"dim": 16, "dim_mults": [1, 2], "channels": 3, "attn_heads": 2, "attn_dim_head": 8},
        requires=("einops_exts", "rotary_embedding_torch", "torchvision", "PIL", "tqdm"),
        inputs="""
def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(2, 3, 4, 16, 16, generator=g), "time": torch.randint(0, 1000, (2,), generator=g)}
""",
    ),
    Entry(
        name="mmdit",
        family="MMDiT (two-stream joint attention)",
        summary="MMDiT of Stable Diffusion 3 (Esser et al. 2024): text and image streams, joint attention, adaptive norms",
        package="mmdit",
        version="0.3.0",
        wheel_sha256="0059b18d9739af7e78edc585a57a9dedc893309e83b5c4c9e9c0c29e520f1959",
        license="MIT",
        license_files=("mmdit-0.3.0.dist-info/licenses/LICENSE",),
        homepage="https://github.com/lucidrains/mmdit",
        files=("mmdit/__init__.py", "mmdit/mmdit_pytorch.py"),
        module="mmdit.mmdit_pytorch",
        cls="MMDiT",
        config={
            "depth": 2, "dim_image": 32, "dim_text": 24, "dim_cond": 16, "dim_head": 8, "heads": 2,
            "num_residual_streams": 1, "qk_rmsnorm": True,
        },
        requires=("x_transformers", "hyper_connections"),
        inputs="""
def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(2, 6, dtype=torch.bool)
    mask[1, 4:] = False
    return {"text_tokens": torch.randn(2, 6, 24, generator=g), "image_tokens": torch.randn(2, 16, 32, generator=g),
            "text_mask": mask, "time_cond": torch.randn(2, 16, generator=g)}
""",
    ),
    Entry(
        name="dit-ml",
        family="DiT (adaLN-Zero, 2-D mixed RoPE)",
        summary="DiT blocks with adaLN-Zero conditioning (Peebles & Xie 2023) on token inputs, optional 2-D mixed rotary embeddings",
        package="dit-ml",
        version="0.2.10",
        wheel_sha256="e67dcfa6363b809c759d0cc1d87c972ec6d625725196dd3e837b532f9327078a",
        license="Apache-2.0",
        license_files=("dit_ml-0.2.10.dist-info/licenses/LICENSE",),
        homepage="https://github.com/Forbu/dit_ml",
        files=("dit_ml/__init__.py", "dit_ml/dit.py", "dit_ml/rope.py"),
        module="dit_ml.dit",
        cls="DiT",
        config={
            "num_patches": 16, "hidden_size": 32, "depth": 2, "num_heads": 2, "mlp_ratio": 2.0,
            "learn_sigma": False, "use_rope": True, "rope_dimension": 2, "max_h": 4, "max_w": 4,
        },
        requires=("timm",),
        inputs="""
def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(2, 16, 32, generator=g), "t": torch.randn(2, 32, generator=g)}
""",
    ),
    Entry(
        name="stable-audio-dit",
        family="1-D audio DiT (rotary, cross-attention)",
        summary="DiffusionTransformer of Stable Audio Open (Evans et al. 2024) on 1-D latent audio, ContinuousTransformer with rotary embeddings",
        package="stable-audio-tools",
        version="0.0.19",
        wheel_sha256="c6b6f540d2bdabc4fc092246c77852f9a96a8ee8e430bbc117b174eb206dc6bd",
        license="MIT",
        license_files=("stable_audio_tools-0.0.19.dist-info/licenses/LICENSE",),
        homepage="https://github.com/Stability-AI/stable-audio-tools",
        files=(
            "stable_audio_tools/__init__.py",
            "stable_audio_tools/models/__init__.py",
            "stable_audio_tools/models/factory.py",
            "stable_audio_tools/models/pretrained.py",
            "stable_audio_tools/models/utils.py",
            "stable_audio_tools/models/dit.py",
            "stable_audio_tools/models/blocks.py",
            "stable_audio_tools/models/transformer.py",
        ),
        module="stable_audio_tools.models.dit",
        cls="DiffusionTransformer",
        config={
            "io_channels": 8, "embed_dim": 64, "depth": 2, "num_heads": 2, "cond_token_dim": 32,
            "global_cond_dim": 16, "project_cond_tokens": False, "transformer_type": "continuous_transformer",
        },
        requires=("huggingface_hub", "safetensors", "packaging"),
        inputs="""
def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(2, 8, 32, generator=g), "t": torch.rand(2, generator=g),
            "cross_attn_cond": torch.randn(2, 6, 32, generator=g), "cross_attn_cond_mask": torch.ones(2, 6, dtype=torch.bool),
            "global_embed": torch.randn(2, 16, generator=g)}
""",
    ),
    Entry(
        name="k-diffusion-transformer",
        family="transformer built by a factory from a nested config (axial RoPE)",
        summary="k-diffusion's ImageTransformerDenoiserModelV1, built by k_diffusion.config.make_model from the nested training config",
        package="k-diffusion",
        version="0.1.1.post1",
        wheel_sha256="b4bdcc74e35dd66df5d25433ea76b19edeaeaf2aad05ed97438be447cf4f5ee1",
        license="MIT",
        license_files=("k_diffusion-0.1.1.post1.dist-info/LICENSE",),
        homepage="https://github.com/crowsonkb/k-diffusion",
        files=(
            "k_diffusion/__init__.py",
            "k_diffusion/augmentation.py",
            "k_diffusion/config.py",
            "k_diffusion/layers.py",
            "k_diffusion/sampling.py",
            "k_diffusion/utils.py",
            "k_diffusion/models/__init__.py",
            "k_diffusion/models/axial_rope.py",
            "k_diffusion/models/flags.py",
            "k_diffusion/models/image_transformer_v1.py",
            "k_diffusion/models/image_v1.py",
        ),
        placeholders={"k_diffusion/__init__.py": "the published __init__ imports the evaluation code (clean-fid, CLIP) and the GNS tools"},
        module="k_diffusion.models.image_transformer_v1",
        cls="ImageTransformerDenoiserModelV1",
        factory="k_diffusion.config:make_model",
        # The whole training config, after k_diffusion.config.load_config merged its defaults: what
        # k-diffusion stores next to its weights.
        config={
            "model": {
                "type": "image_transformer_v1", "input_channels": 3, "input_size": [16, 16], "patch_size": [4, 4],
                "width": 64, "depth": 2, "d_ff": 128, "augment_wrapper": False, "skip_stages": 0, "has_variance": False,
                "sigma_data": 0.5, "dropout_rate": 0.0, "augment_prob": 0.0, "loss_config": "karras",
                "loss_weighting": "soft-min-snr", "loss_scales": 1, "sigma_min": 0.01, "sigma_max": 80,
                "sigma_sample_density": {"type": "cosine-interpolated"},
            },
            "dataset": {"type": "imagefolder", "num_classes": 0, "cond_dropout_rate": 0.1},
            "optimizer": {"type": "adamw", "lr": 5e-4, "betas": [0.9, 0.99], "eps": 1e-8, "weight_decay": 1e-4},
            "lr_sched": {"type": "constant", "warmup": 0.0},
            "ema_sched": {"type": "inverse", "power": 0.6667, "max_value": 0.9999},
        },
        requires=("jsonmerge", "skimage", "dctorch", "scipy", "torchdiffeq", "torchsde", "torchvision", "PIL", "safetensors", "tqdm"),
        inputs="""
def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(2, 3, 16, 16, generator=g), "sigma": torch.rand(2, generator=g) * 10 + 0.1}
""",
    ),
]

BY_NAME = {e.name: e for e in ENTRIES}

# Tried and left out (measured while building the corpus, 2026-11-30):
# - hdit 0.0.1b6 (HDiT with shifted-window attention): hdit/modules/attention/__init__.py imports
#   its natten module unguarded, so nothing imports without natten; natten 0.21.7 (sdist, builds
#   without CUDA) no longer has the `has_fused_na` the package calls. No window-attention model
#   that runs on CPU from PyPI alone was found.
# - f5-tts 1.1.22 (DiT with adaLN and rotary, 1-D mel): its modules.py imports librosa and
#   torchaudio at the top; torchaudio for this torch is not on the package index here.
# - audio-diffusion-pytorch 0.1.3 / a-unet 0.0.16 (1-D U-Net): components.py imports torchaudio.
