# ruff: noqa
import builtins

import torch
import torch.nn.functional as F
from torch import nn

F.gelu = lambda x, approximate="none": x  # <- T007
setattr(torch.nn.functional, "silu", torch.relu)  # <- T007
nn.Module.__call__ = lambda self, *a: a  # <- T007
builtins.print = lambda *a: None  # <- T007
torch.backends.cudnn.allow_tf32 = False  # <- T007
del torch.nn.functional.relu  # <- T007
