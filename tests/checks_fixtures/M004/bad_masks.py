# ruff: noqa
import torch


class A(torch.nn.Module):
    def forward(self, x, attention_mask=None):  # <- M004
        return self.attn(x)

    def converted(self, x, attention_mask=None):  # <- M004
        if attention_mask is not None:
            attention_mask = attention_mask.bool()
        return self.attn(x)

    def overwritten(self, x, encoder_attention_mask=None):  # <- M004
        encoder_attention_mask = None
        return self.attn(x, mask=encoder_attention_mask)

    def helper_ignores(self, x, attention_mask=None):  # <- M004
        return self._attend(x, attention_mask)

    def _attend(self, x, mask):  # <- M004
        return self.attn(x)
