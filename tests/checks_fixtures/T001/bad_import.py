# ruff: noqa
import torch
from sandbox.parity import engine  # <- T001
import agent.checks as checks  # <- T001
from integrate import cli  # <- T001
