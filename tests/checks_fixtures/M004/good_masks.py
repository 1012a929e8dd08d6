# ruff: noqa
import torch


class A(torch.nn.Module):
    def forward(self, x, attention_mask=None, use_mask=True, mask_len=None):
        if attention_mask is not None:
            attention_mask = (1 - attention_mask.to(x.dtype)) * -10000.0
        return self.attn(x, attention_mask=attention_mask)

    def through_helper(self, x, attention_mask=None):
        return self._attend(x, attention_mask)

    def _attend(self, x, mask):
        return self.attn(x, mask)

    def check_inputs(self, attention_mask):
        if attention_mask is None:
            raise ValueError("mask needed")

    def interface(self, x, attention_mask=None):
        raise NotImplementedError
