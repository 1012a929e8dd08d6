# ruff: noqa
import sys

import torch

T = torch.Tensor
T.__add__ = T.__sub__  # <- T007
functional = getattr(torch.nn, "functional")
functional.softmax = torch.sigmoid  # <- T007
sys.modules["torch"] = None  # <- T007
globals()["torch"] = None  # <- T007
torch.nn.modules.module.register_module_forward_hook(lambda m, i, o: o)  # <- T007
