"""The float16 forward is finite (see precision.py)."""

import torch

from sandbox.compliance.port import Port
from sandbox.compliance.precision import finite_forward
from sandbox.compliance.result import CheckResult

NAME = "fp16_finite"
TITLE = "float16 forward finite"


def check(port: Port) -> CheckResult:
    return finite_forward(port, torch.float16)
