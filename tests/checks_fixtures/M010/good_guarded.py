# ruff: noqa
import torch

from diffusers.utils import is_xformers_available

if is_xformers_available():
    import xformers

try:
    import flash_attn
except ImportError:
    flash_attn = None
