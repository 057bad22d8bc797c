"""What a run may use of this machine."""

from __future__ import annotations

import os


def memory_limit() -> int:
    """The memory a run may plan to use: ``DATALEVER_MAX_MEMORY`` (bytes) if set, else this
    machine's physical memory."""
    override = os.environ.get("DATALEVER_MAX_MEMORY", "").strip()
    if override.isdigit():
        return int(override)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
