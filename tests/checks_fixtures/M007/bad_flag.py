# ruff: noqa
from diffusers.models.modeling_utils import ModelMixin


class M(ModelMixin):
    _supports_gradient_checkpointing = True  # <- M007

    def __init__(self):
        super().__init__()
        self.gradient_checkpointing = False

    def forward(self, x):
        if self.use_checkpointing:
            return self._gradient_checkpointing_func(self.block, x)
        return self.block(x)
