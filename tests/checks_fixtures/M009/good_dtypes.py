# ruff: noqa
import torch


class M(torch.nn.Module):
    def forward(self, x):
        dtype = torch.float32 if x.device.type == "mps" else torch.float64
        freqs = torch.arange(8, dtype=dtype)
        if x.dtype == torch.float16:
            x = x.float()
        return (x.float() * freqs).to(x.dtype)
