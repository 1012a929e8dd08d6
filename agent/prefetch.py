"""Ask the kernel to start reading input files before the sandboxed job that needs them starts.

A conversion job spends its first second or more starting an interpreter and importing torch.
The converter itself starts copying renamed tensors before that import, but a mapping module
that imports torch at its top delays everything; `posix_fadvise(WILLNEED)` queues asynchronous
readahead of the checkpoint's beginning so that the disk works meanwhile. Only the first GiB (at
most half of free memory) is queued: that covers the start-up, and reading the whole file ahead
would only compete with the converter's own sequential reads and writes. Page cache is not
process memory, so the job's peak RSS is unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def available_memory_bytes() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def prefetch(paths: Iterable[Path], limit_bytes: int = 1 << 30, fraction_of_free: float = 0.5) -> int:
    """Queue readahead for the start of `paths`, in order; returns the bytes queued."""
    if not hasattr(os, "posix_fadvise"):
        return 0
    budget = min(limit_bytes, int(available_memory_bytes() * fraction_of_free))
    queued = 0
    for path in paths:
        if budget <= queued:
            break
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            size = min(os.fstat(fd).st_size, budget - queued)
            os.posix_fadvise(fd, 0, size, os.POSIX_FADV_WILLNEED)
            queued += size
        finally:
            os.close(fd)
    return queued
