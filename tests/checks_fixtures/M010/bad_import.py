# ruff: noqa
import torch
import xformers  # <- M010
import flash_attn as fa  # <- M010
