"""Parity engine: does the candidate compute what the reference computes, and if not, where not."""

from sandbox.parity.engine import PRESETS, ParityError, run_parity

__all__ = ["PRESETS", "ParityError", "run_parity"]
