# ruff: noqa
import sys
from sys import _getframe  # <- T002


def forward(x):
    f = getattr(sys, "_getframe")(1)  # <- T002
    g = _getframe(2)  # <- T002
    return f.f_back.f_locals  # <- T002
