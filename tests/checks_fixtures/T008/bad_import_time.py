# ruff: noqa
import random

import numpy as np
import torch
from torch import manual_seed as seed_everything

print("loading the model")  # <- T008
torch.manual_seed(0)  # <- T008
seed_everything(1)  # <- T008
torch.set_default_dtype(torch.float64)  # <- T008
torch.set_grad_enabled(False)  # <- T008
np.random.seed(0)  # <- T008
random.seed(0)  # <- T008


@torch.compile  # <- T008
def fused(x):
    return x * 2


class Model(torch.nn.Module):
    torch.backends.cudnn.benchmark = torch.use_deterministic_algorithms(True)  # <- T008
