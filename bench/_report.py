"""Printing the bus benchmark: the machine, a table of medians and ratios, one JSON line."""

from __future__ import annotations

import json
import os
import platform
import pstats
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

from rich.console import Console
from rich.table import Table

from bench._harness import Measurement

TARGET_VS_FASTSTREAM = 5.0
TARGET_VS_RAW = 0.25


@dataclass(frozen=True, slots=True)
class Machine:
    """Where the numbers were measured, and of which source revision."""

    cpu: str
    cores: int
    python: str
    revision: str

    @classmethod
    def this(cls) -> Machine:
        """Describe the machine this process runs on and the checkout it runs from."""
        cpu = "unknown"
        cpuinfo = Path("/proc/cpuinfo")
        if cpuinfo.is_file():
            for line in cpuinfo.read_text().splitlines():
                if line.startswith("model name"):
                    cpu = line.partition(":")[2].strip()
                    break
        return cls(cpu, os.cpu_count() or 0, platform.python_version(), _revision())


def _revision() -> str:
    """``git describe`` of this checkout (``-dirty`` when edited), or ``unknown``."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return described.stdout.strip() or "unknown"


@dataclass(slots=True)
class Results:
    """Per contender and round: events per second, and CPU microseconds per event."""

    events: int
    server: str
    machine: Machine
    rates: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)

    def add(self, contender: str, measured: Measurement) -> None:
        """Record one round of ``contender``."""
        self.rates.setdefault(contender, []).append(self.events / measured.wall_s)
        self.cpu.setdefault(contender, []).append(measured.cpu_s / self.events * 1e6)

    def median(self, contender: str) -> float:
        """Median events/s of ``contender`` over its rounds."""
        return median(self.rates[contender])

    def cpu_median(self, contender: str) -> float:
        """Median CPU time of ``contender``'s process per event, in microseconds."""
        return median(self.cpu[contender])

    def summary(self) -> dict[str, object]:
        """The JSON object printed as the last line."""
        atende = self.median("atende")
        line: dict[str, object] = {"bench": "bus"}
        for name in self.rates:
            line[f"{name}_per_s"] = round(self.median(name))
        line["vs_faststream"] = round(atende / self.median("faststream"), 2)
        line["vs_raw"] = round(atende / self.median("raw"), 3)
        for name in self.cpu:
            line[f"{name}_cpu_us_per_event"] = round(self.cpu_median(name), 1)
        line.update(
            events=self.events,
            rounds=len(self.rates["atende"]),
            server=self.server,
            revision=self.machine.revision,
            python=self.machine.python,
            cpu=self.machine.cpu,
            cores=self.machine.cores,
        )
        return line


def print_report(console: Console, results: Results, labels: dict[str, str]) -> None:
    """Print the table of medians, per-round figures and ratios, then the targets."""
    machine = results.machine
    console.print(
        f"{results.events:,} events per round on {results.server}; "
        f"{machine.cpu}, {machine.cores} cores, Python {machine.python}; "
        f"source {machine.revision}"
    )
    atende = results.median("atende")
    table = Table(title="Consumer throughput, one process each, same Redis, same run")
    table.add_column("contender")
    table.add_column("events/s (median)", justify="right")
    table.add_column("each round", justify="right")
    table.add_column("atende ÷ this", justify="right")
    table.add_column("CPU µs/event", justify="right")
    for name, rates in results.rates.items():
        table.add_row(
            labels.get(name, name),
            f"{results.median(name):,.0f}",
            " ".join(f"{rate:,.0f}" for rate in rates),
            f"{atende / results.median(name):.2f}",
            f"{results.cpu_median(name):.1f}",
        )
    console.print(table)
    summary = results.summary()
    for key, target in (("vs_faststream", TARGET_VS_FASTSTREAM), ("vs_raw", TARGET_VS_RAW)):
        value = summary[key]
        assert isinstance(value, float)
        verdict = "met" if value >= target else "MISSED"
        console.print(f"{key} = {value} (target ≥ {target}): {verdict}")


def print_profile(console: Console, path: Path, events: int, top: int = 30) -> None:
    """Print the functions that took most time of their own in a cProfile dump."""
    stats = pstats.Stats(str(path))
    rows = sorted(
        stats.stats.items(),  # type: ignore[attr-defined]
        key=lambda item: item[1][2],
        reverse=True,
    )[:top]
    table = Table(
        title=f"atende child under cProfile: time per event ({events:,} events)",
        caption="cProfile slows every call, so compare shares, not absolute figures; "
        "a coroutine counts one call per resumption.",
    )
    table.add_column("function")
    table.add_column("calls", justify="right")
    table.add_column("own µs/event", justify="right")
    table.add_column("with callees µs/event", justify="right")
    for (filename, line, name), (_cc, calls, own_s, cumulative_s, _callers) in rows:
        where = f"{Path(filename).name}:{line}({name})" if line else name
        table.add_row(
            where,
            f"{calls:,}",
            f"{own_s / events * 1e6:.2f}",
            f"{cumulative_s / events * 1e6:.2f}",
        )
    console.print(table)


def print_summary_line(results: Results) -> None:
    """The last line of stdout: one JSON object."""
    print(json.dumps(results.summary()), flush=True)
