# ruff: noqa
import socket  # <- T005
import sys


def forward(x):
    sys.exit(0)  # <- T005
