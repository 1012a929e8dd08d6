"""diffusers' names for constructor and forward arguments, each with the diffusers classes that
use it (tests/test_conventions_vocabulary.py checks every claim against the installed diffusers'
signatures) and the research spellings it replaces. skills/models.md#config-vocabulary renders
the same table for people.

A research spelling is renamed only when the meaning is the same; names that mean different
things in different codebases (`dim`, `channels`, `eps`, `num_groups`) are not in the table.
"""

from __future__ import annotations

from dataclasses import dataclass

BOTH = ("transformers", "unets")
ALL = ("transformers", "unets", "autoencoders")


@dataclass(frozen=True)
class Name:
    name: str  # diffusers' name
    aliases: tuple[str, ...]  # research spellings renamed to it
    families: tuple[str, ...]  # model families (the plan's) where the rename applies
    used_by: tuple[str, ...]  # diffusers model classes whose __init__ takes `name`
    meaning: str  # the docstring sentence, in our words
    needs_class_labels: bool = False  # only when forward takes class labels (DiT's use of the name)


CONFIG_NAMES: tuple[Name, ...] = (
    Name("sample_size", ("input_size", "image_size", "img_size", "latent_size"), BOTH,  # an autoencoder's latent size is not its sample size
         ("DiTTransformer2DModel", "PixArtTransformer2DModel", "SD3Transformer2DModel", "UNet2DModel", "UNet2DConditionModel"),
         "Height and width of the (latent) input the model was built for."),
    Name("in_channels", ("in_chans", "in_ch", "input_channels", "in_channel"), ALL,
         ("DiTTransformer2DModel", "PixArtTransformer2DModel", "SD3Transformer2DModel", "UNet2DModel", "UNet2DConditionModel", "AutoencoderKL"),
         "Number of channels of the input."),
    Name("out_channels", ("out_chans", "out_ch", "output_channels", "out_channel"), ALL,
         ("DiTTransformer2DModel", "PixArtTransformer2DModel", "SD3Transformer2DModel", "UNet2DModel", "UNet2DConditionModel", "AutoencoderKL"),
         "Number of channels of the output."),
    Name("patch_size", (), BOTH,
         ("DiTTransformer2DModel", "PixArtTransformer2DModel", "SD3Transformer2DModel"),
         "Side of the square patches the input is cut into."),
    Name("num_layers", ("depth", "n_layers", "n_layer"), ("transformers",),
         ("DiTTransformer2DModel", "PixArtTransformer2DModel", "SD3Transformer2DModel"),
         "Number of transformer blocks."),
    Name("num_attention_heads", ("num_heads", "n_heads", "n_head", "heads", "attn_heads"), BOTH,
         ("DiTTransformer2DModel", "PixArtTransformer2DModel", "SD3Transformer2DModel", "UNet2DConditionModel"),
         "Number of attention heads."),
    Name("attention_head_dim", ("head_dim", "dim_head", "attn_dim_head", "num_head_channels", "d_head"), BOTH,
         ("DiTTransformer2DModel", "PixArtTransformer2DModel", "SD3Transformer2DModel", "UNet2DModel"),
         "Number of channels in each attention head."),
    Name("cross_attention_dim", ("context_dim", "cross_attn_dim"), BOTH,
         ("PixArtTransformer2DModel", "UNet2DConditionModel"),
         "Dimension of the encoder hidden states the model attends to."),
    Name("mlp_ratio", (), ("transformers",),
         ("HunyuanDiT2DModel",),
         "Hidden width of the feed-forward layers as a multiple of the model width."),
    Name("attention_bias", ("qkv_bias",), ("transformers",),
         ("DiTTransformer2DModel", "PixArtTransformer2DModel"),
         "Whether the query, key and value projections have a bias."),
    Name("num_embeds_ada_norm", ("num_classes", "n_classes"), ("transformers",),
         ("DiTTransformer2DModel",),
         "Number of class labels embedded for the adaptive norms (the label-embedding table's size).",
         needs_class_labels=True),
    Name("num_class_embeds", ("num_classes", "n_classes"), ("unets",),
         ("UNet2DModel", "UNet2DConditionModel"),
         "Number of class labels embedded and added to the timestep embedding."),
    Name("layers_per_block", ("num_res_blocks", "n_res_blocks"), ("unets", "autoencoders"),
         ("UNet2DModel", "UNet2DConditionModel", "AutoencoderKL"),
         "Number of residual layers per resolution level."),
    Name("latent_channels", ("z_channels",), ("autoencoders",),
         ("AutoencoderKL",),
         "Number of channels of the latent representation."),
    Name("transformer_layers_per_block", ("transformer_depth",), ("unets",),
         ("UNet2DConditionModel",),
         "Number of transformer layers in each attention block."),
    Name("use_linear_projection", ("use_linear_in_transformer",), ("unets",),
         ("UNet2DConditionModel",),
         "Whether the attention blocks project in and out with linear layers instead of 1x1 convolutions."),
    Name("norm_num_groups", ("norm_groups", "groupnorm_groups"), ALL,
         ("DiTTransformer2DModel", "UNet2DModel", "UNet2DConditionModel", "AutoencoderKL"),
         "Number of groups of the group normalizations."),
    Name("norm_eps", ("layer_norm_eps", "norm_epsilon"), BOTH,
         ("DiTTransformer2DModel", "UNet2DModel", "UNet2DConditionModel"),
         "Epsilon of the normalization layers."),
    Name("dropout", ("dropout_rate", "drop_rate"), BOTH,
         ("DiTTransformer2DModel", "UNet2DModel", "UNet2DConditionModel"),
         "Dropout probability."),
)

# A model width the diffusers transformers take as heads x per-head channels (DiT, PixArt and
# SD3 have no width argument): `hidden_size` becomes `attention_head_dim`, derived exactly as
# hidden_size // num_heads when the reference's values divide.
WIDTH_ALIASES = ("hidden_size", "embed_dim", "d_model", "model_dim", "hidden_dim")
PER_HEAD = "attention_head_dim"
HEADS = "num_attention_heads"


@dataclass(frozen=True)
class ForwardName:
    name: str
    used_by: tuple[str, ...]  # diffusers classes whose forward takes `name`
    meaning: str
    annotation: str


FORWARD_NAMES: dict[str, ForwardName] = {f.name: f for f in (
    ForwardName("hidden_states", ("DiTTransformer2DModel", "PixArtTransformer2DModel", "SD3Transformer2DModel"),
                "The input latents.", "torch.Tensor"),
    ForwardName("sample", ("UNet2DModel", "UNet2DConditionModel", "AutoencoderKL"), "The input sample.", "torch.Tensor"),
    ForwardName("timestep", ("DiTTransformer2DModel", "PixArtTransformer2DModel", "UNet2DModel", "UNet2DConditionModel"),
                "The denoising timestep (or noise level) of each sample.", "torch.Tensor | float | int"),
    ForwardName("class_labels", ("DiTTransformer2DModel", "UNet2DModel", "UNet2DConditionModel"),
                "The class label of each sample.", "torch.Tensor"),
    ForwardName("encoder_hidden_states", ("PixArtTransformer2DModel", "SD3Transformer2DModel", "UNet2DConditionModel"),
                "Conditioning embeddings the model attends to (text or other encoder outputs).", "torch.Tensor"),
    ForwardName("pooled_projections", ("SD3Transformer2DModel", "FluxTransformer2DModel"),
                "Pooled conditioning embeddings: one vector per sample.", "torch.Tensor"),
    ForwardName("attention_mask", ("PixArtTransformer2DModel", "UNet2DConditionModel"),
                "Mask over the input tokens for self-attention.", "torch.Tensor"),
    ForwardName("encoder_attention_mask", ("PixArtTransformer2DModel", "UNet2DConditionModel"),
                "Mask over the encoder hidden states for cross-attention.", "torch.Tensor"),
    ForwardName("return_dict", ("DiTTransformer2DModel", "PixArtTransformer2DModel", "SD3Transformer2DModel", "UNet2DModel", "UNet2DConditionModel",
                                "AutoencoderKL"),
                "Whether to return an output dataclass instead of a plain tuple.", "bool"),
)}

# Research spellings of forward arguments (analyze's recipe uses the same families of names).
IMAGE_ALIASES = {"x", "img", "image", "images", "latents", "latent", "sample", "hidden_states", "z", "x_t", "xt", "noisy", "inp", "input"}
TIME_ALIASES = {"t", "timestep", "timesteps", "time", "times", "sigma", "sigmas", "noise_level", "ts"}
LABEL_ALIASES = {"y", "class_labels", "labels", "class_label", "label", "cls", "classes"}
POOLED_ALIASES = {"y", "vec", "vector", "pooled", "pooled_text", "text_pooled", "pooled_prompt_embeds", "clip_pooled", "global_cond"}
CONTEXT_ALIASES = {"context", "encoder_hidden_states", "cond", "text_emb", "text_embeds", "txt", "c_crossattn", "encoder_out", "caption", "text"}
CONTEXT_MASK_WORDS = ("context", "cond", "text", "txt", "encoder", "caption", "y_", "cross")


def config_names_for(family: str) -> dict[str, Name]:
    """alias -> Name for one model family (a later entry never overrides an earlier one)."""
    out: dict[str, Name] = {}
    for entry in CONFIG_NAMES:
        if family in entry.families:
            for alias in entry.aliases:
                out.setdefault(alias, entry)
    return out


def meaning(name: str) -> str | None:
    entry = next((e for e in CONFIG_NAMES if e.name == name), None)
    return entry.meaning if entry else None
