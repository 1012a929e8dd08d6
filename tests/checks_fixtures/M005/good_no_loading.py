# ruff: noqa
import torch


class A(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(2, 2)


def load_checkpoint(path):  # a loader outside model classes
    return torch.load(path)
