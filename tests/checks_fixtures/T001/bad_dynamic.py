# ruff: noqa
import importlib
import sys

engine = importlib.import_module("sandbox.parity.engine")  # <- T001
harness = __import__("agent")  # <- T001
already = sys.modules["sandbox"]  # <- T001
