"""Ask the kernel to start reading input files before the sandboxed job that needs them starts.

A conversion job spends its first second or more starting an interpreter and importing torch;
the disk is idle meanwhile. `posix_fadvise(WILLNEED)` queues asynchronous readahead, so that
time overlaps with reading the checkpoint. Page cache is not process memory (the job's peak RSS
is unchanged) and the amount is capped by what the machine has free, so a checkpoint larger than
memory only has its beginning read ahead.
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


def prefetch(paths: Iterable[Path], fraction_of_free: float = 0.5) -> int:
    """Queue readahead for `paths` in order, up to a share of free memory; returns bytes queued."""
    if not hasattr(os, "posix_fadvise"):
        return 0
    budget = int(available_memory_bytes() * fraction_of_free)
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
