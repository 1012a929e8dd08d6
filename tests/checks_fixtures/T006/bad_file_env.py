# ruff: noqa
import os
from pathlib import Path  # <- T006

MODE = os.environ.get("PARITY")  # <- T006
FLAG = os.getenv("X")  # <- T006
REF = open("reference.pt", "rb").read()  # <- T006


def forward(x, path):
    return path.read_text()  # <- T006
