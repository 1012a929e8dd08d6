"""The verdict side of a parity check: trusted code that never imports a spec or a model.

It reads the files each side left (sandbox/parity/exchange.py), maps weights as data when the
host must, and decides whether the candidate computes what the reference computes.
"""

from sandbox.parity.verdict.judge import decide

__all__ = ["decide"]
