# ruff: noqa
import torch


class Model(torch.nn.Module):
    def __init__(self, dim: int = 4):
        super().__init__()
        self.proj = torch.nn.Linear(dim, dim)

    def forward(self, x):
        return self.proj(x)
