# ruff: noqa
import inspect

import torch


class Attention(torch.nn.Module):
    def forward(self, hidden_states, **kwargs):
        # diffusers' attention classes filter processor kwargs this way
        accepted = set(inspect.signature(self.processor.__call__).parameters.keys())
        kwargs = {k: v for k, v in kwargs.items() if k in accepted}
        return self.processor(self, hidden_states, **kwargs)
