"""Stand-in for diffusers' tests/testing_utils.py: the names a model test imports."""

import os

import pytest
import torch

torch_device = "cuda" if torch.cuda.is_available() else "cpu"

slow = pytest.mark.skipif(os.environ.get("RUN_SLOW", "").lower() not in ("1", "yes", "true"), reason="test is slow")


def enable_full_determinism():
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    torch.use_deterministic_algorithms(True)
