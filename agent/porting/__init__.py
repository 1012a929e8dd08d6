"""Deterministic codemods for the structural port: numerics untouched, no LLM involved."""
