"""integrate: port diffusion models into diffusers, prove parity, open a PR."""

__version__ = "0.1.0"
