# ruff: noqa
import subprocess  # <- T005
from os import system as run_shell  # <- T005
import os

os.kill(os.getpid(), 9)  # <- T005
