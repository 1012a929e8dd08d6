# ruff: noqa
import importlib

from einops import rearrange  # <- M001
import einops as eo  # <- M001

ops = importlib.import_module("einops")  # <- M001
