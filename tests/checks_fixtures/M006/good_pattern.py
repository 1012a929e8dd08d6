# ruff: noqa
import torch


class A(torch.nn.Module, AttentionModuleMixin):
    _default_processor_cls = P
    _available_processors = [P]

    def __init__(self):
        super().__init__()
        self.set_processor(P())


class AttentionModuleMixin:
    def set_processor(self, processor):
        self.processor = processor

    def reset(self):
        self.set_processor(None)
