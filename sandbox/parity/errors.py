"""Errors shared by both halves of the parity engine."""


class ParityError(Exception):
    """The spec could not be run (exit 2), as opposed to a port that does not match (exit 1)."""
