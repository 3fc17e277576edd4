"""Cap a process at a share of the CPU with a Linux cgroup (``bench/pipeline.py --bot-cpu-limit``).

Why: the scale-out target compares two bot processes with one. On a 2-core machine that also
runs PostgreSQL, the fake Bot API and the load generator, one bot process already keeps the
machine ~80% busy, so a second one can only show the machine's ceiling, not whether the design
scales (shared locks, PostgreSQL contention, duplicate work). Capping every bot process at the
same fraction of a core (a CFS quota) leaves CPU for everything else, so K processes can show
K times the throughput if nothing but CPU limits them, as K cores would.

Needs root and a writable ``cpu`` controller (cgroup v1 ``/sys/fs/cgroup/cpu`` or v2
``/sys/fs/cgroup``); otherwise :class:`CpuLimitUnavailable` says what is missing.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

PERIOD_US = 100_000
V1_ROOT = Path("/sys/fs/cgroup/cpu")
V2_ROOT = Path("/sys/fs/cgroup")


class CpuLimitUnavailable(RuntimeError):
    """This machine cannot cap a process's CPU (no cgroup cpu controller, or not root)."""


@dataclass
class CpuLimits:
    """One cgroup per capped process, removed by :meth:`remove` once the processes ended."""

    cores: float
    groups: list[Path] = field(default_factory=list)

    def cap(self, pid: int) -> None:
        """Put ``pid`` (all its threads) in a new cgroup allowed ``cores`` of CPU time."""
        if self.cores <= 0:
            raise ValueError("the CPU limit must be a positive number of cores")
        quota = max(1000, int(self.cores * PERIOD_US))
        root, v2 = _root()
        group = root / f"sanad-bench-{os.getpid()}-{pid}"
        try:
            group.mkdir()
            self.groups.append(group)
            if v2:
                (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            else:
                (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (group / "cpu.cfs_quota_us").write_text(str(quota))
            (group / "cgroup.procs").write_text(str(pid))
        except OSError as exc:
            raise CpuLimitUnavailable(f"cannot cap pid {pid} in {group}: {exc}") from exc

    def throttled_s(self) -> float:
        """Seconds the capped processes were held back by their quota (``cpu.stat``)."""
        total = 0.0
        for group in self.groups:
            with contextlib.suppress(OSError):
                for line in (group / "cpu.stat").read_text().splitlines():
                    name, _, value = line.partition(" ")
                    if name == "throttled_time":  # v1: nanoseconds
                        total += int(value) / 1e9
                    elif name == "throttled_usec":  # v2: microseconds
                        total += int(value) / 1e6
        return round(total, 2)

    def remove(self) -> None:
        """Remove the cgroups (each is empty once its process ended)."""
        for group in self.groups:
            with contextlib.suppress(OSError):
                group.rmdir()
        self.groups.clear()


def _root() -> tuple[Path, bool]:
    """The directory new cpu cgroups go in, and whether it is cgroup v2."""
    if (V2_ROOT / "cgroup.controllers").exists():
        if "cpu" not in (V2_ROOT / "cgroup.controllers").read_text().split():
            raise CpuLimitUnavailable("cgroup v2 without the cpu controller")
        return V2_ROOT, True
    if (V1_ROOT / "cpu.cfs_quota_us").exists():
        return V1_ROOT, False
    raise CpuLimitUnavailable("no cgroup cpu controller at /sys/fs/cgroup/cpu or /sys/fs/cgroup")
