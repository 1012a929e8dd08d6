# ruff: noqa
import torch


def forward(x, signal=None):
    return torch.nn.functional.silu(x)
