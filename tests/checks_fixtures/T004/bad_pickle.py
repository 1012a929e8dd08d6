# ruff: noqa
import pickle as pk  # <- T004
from ctypes import CDLL  # <- T004

import torch

state = torch.load("weights.pt")  # <- T004
