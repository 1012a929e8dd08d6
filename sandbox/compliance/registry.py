"""The compliance checks, in the order they run; each module has NAME, TITLE and check(port)."""

from __future__ import annotations

from types import ModuleType

from sandbox.compliance import (
    attention_backends,
    attention_mask,
    batch_independence,
    bf16_finite,
    fp16_finite,
    gradient_checkpointing,
    return_dict,
    save_load,
    torch_compile,
)

CHECKS: tuple[ModuleType, ...] = (
    save_load,
    return_dict,
    fp16_finite,
    bf16_finite,
    batch_independence,
    attention_mask,
    gradient_checkpointing,
    attention_backends,
    torch_compile,
)

BY_NAME: dict[str, ModuleType] = {c.NAME: c for c in CHECKS}
