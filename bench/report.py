"""Statistics and Markdown tables: what the bench prints (and docs/benchmarks.md quotes)."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (nan when there are none)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class LatencySummary:
    count: int
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> LatencySummary:
        values = sorted(seconds)
        return cls(len(values), percentile(values, 0.50), percentile(values, 0.95),
                   percentile(values, 0.99), values[-1] if values else math.nan)


@dataclass
class Row:
    """One measured phase against one server."""

    server: str
    pods: str
    mode: str  # "saturation" or "N/s"
    throughput: float  # answers per second
    latency: dict[str, LatencySummary] = field(default_factory=dict)
    server_cpu_ms: float = math.nan  # server CPU per answer
    load_busy: float = math.nan  # load processes' CPU / wall time, per process
    errors: int = 0
    note: str = ""


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.2f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
              for r in rows]
    return "\n".join(lines)


def latency_table(rows: Sequence[Row]) -> str:
    headers = ["server", "pods", "load", "reviews/s", "srv CPU ms/review", "hook",
               "p50 ms", "p95 ms", "p99 ms", "max ms", "n", "errors", "loader busy"]
    out = []
    for row in rows:
        for i, (hook, s) in enumerate(sorted(row.latency.items())):
            first = i == 0
            out.append([
                row.server if first else "", row.pods if first else "",
                row.mode if first else "",
                f"{row.throughput:.0f}" if first else "",
                ("-" if math.isnan(row.server_cpu_ms) else f"{row.server_cpu_ms:.2f}")
                if first else "",
                hook, ms(s.p50), ms(s.p95), ms(s.p99), ms(s.max), str(s.count),
                str(row.errors) if first else "",
                ("-" if math.isnan(row.load_busy) else f"{row.load_busy:.0%}") if first else "",
            ])
    return table(headers, out)


def load_average() -> str:
    """The 1-minute load average: above ~1 before a run, something else shares the CPUs."""
    try:
        with open("/proc/loadavg") as loadavg:
            return loadavg.read().split()[0]
    except OSError:
        return "?"


def machine_lines() -> list[str]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return [f"machine: {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), "
            f"{model}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}"]
