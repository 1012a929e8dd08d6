"""The bfloat16 forward is finite (see precision.py)."""

import torch

from sandbox.compliance.port import Port
from sandbox.compliance.precision import finite_forward
from sandbox.compliance.result import CheckResult

NAME = "bf16_finite"
TITLE = "bfloat16 forward finite"


def check(port: Port) -> CheckResult:
    return finite_forward(port, torch.bfloat16)
