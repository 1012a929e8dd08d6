# ruff: noqa
import torch


class A(torch.nn.Module):  # <- M006
    def __init__(self):
        super().__init__()
        self.set_processor(P())


class B(torch.nn.Module, AttentionModuleMixin):  # <- M006
    _default_processor_cls = P

    def __init__(self):
        super().__init__()
        self.set_processor(P())
