"""The machine a run measured its figures on, so that speed figures from different hosts are not mixed up
unknowingly: CPU model, logical cores and the vector ISA the native runtime was built for."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what `platform` reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_tags() -> dict[str, str]:
    """`machine.cpu`, `machine.cores` and `machine.isa` (the native build's vector ISA, `none` without it)."""
    from rtnt.native import build_info, native_available

    isa = str(build_info().get("vector_isa", "unknown")) if native_available() else "none"
    return {"machine.cpu": cpu_model(), "machine.cores": str(os.cpu_count() or 0), "machine.isa": isa}
