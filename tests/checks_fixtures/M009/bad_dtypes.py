# ruff: noqa
import torch


def make_freqs(n):
    return torch.arange(n, dtype=torch.float64)


class M(torch.nn.Module):
    def forward(self, x):
        freqs = torch.arange(8, dtype=torch.float64)  # <- M009
        dt = torch.float64
        more = torch.ones(8, dtype=dt)  # <- M009
        helper = make_freqs(8)  # <- M009
        return x.half() * freqs  # <- M009
