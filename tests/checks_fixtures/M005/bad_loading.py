# ruff: noqa
import torch
from safetensors.torch import load_file as read_weights


class A(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.load_state_dict(torch.load("w.pt"))  # <- M005
        self.load_state_dict(read_weights("w.safetensors"))  # <- M005
