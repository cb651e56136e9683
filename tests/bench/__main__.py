"""`python -m tests.bench`: run the named benchmarks, put their figures in this machine's table of BENCHMARKS.md,
and their whole table at the top of docs/benchmarks-log.md (tests/bench/tables.py)."""
from __future__ import annotations

import argparse
import platform
import time
import traceback
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch

from cnn_lab import data as datasets
from cnn_lab.device import describe_device
from tests.bench.cluster import bench_ray
from tests.bench import tables
from tests.bench.common import Row
from tests.bench.defaults import bench_defaults, bench_probe_variants, bench_variants
from tests.bench.hostile import bench_hostile
from tests.bench.latency import bench_latency
from tests.bench.memory import bench_memory
from tests.bench.pages import bench_conv_update, bench_inside
from tests.bench.processes import bench_browser, bench_cold_probe
from tests.bench.resume import bench_resume
from tests.bench.training import (
    bench_course,
    bench_cpu_presets,
    bench_data,
    bench_fast_preset,
    bench_speedrun,
    bench_streaming,
)
from tests.bench.transfer import bench_cpu_transfer, bench_transfer
from tests.bench.utilisation import bench_utilisation

# each gives its rows as a list, or one by one as they are measured (the long ones)
BENCHMARKS: dict[str, Callable[[datasets.ImageDataset, bool], Iterable[Row]]] = {
    "inside": bench_inside,
    "latency": bench_latency,
    "hostile": bench_hostile,
    "memory": bench_memory,
    "utilisation": bench_utilisation,
    "resume": bench_resume,
    "transfer": bench_transfer,
    "defaults": bench_defaults,
    "variants": bench_variants,
    "probe_variants": bench_probe_variants,
    "conv": bench_conv_update,
    "data": bench_data,
    "ray": bench_ray,
    "course": bench_course,
    "fast": bench_fast_preset,
    "cpu": bench_cpu_presets,
    "cpu_transfer": bench_cpu_transfer,
    "cold_probe": bench_cold_probe,
    "browser": bench_browser,
    "speedrun": bench_speedrun,
    "streaming": bench_streaming,
}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return (f"{describe_device()} · {cpu}, {torch.get_num_threads()} torch threads · Python {platform.python_version()}"
            f" · torch {torch.__version__}")


class Run:
    """One bench run: its whole table for the log, and each row with the command that measures it again."""

    def __init__(self) -> None:
        self.date = time.strftime("%Y-%m-%d %H:%M")
        self.lines = [f"### {self.date} · {machine()}", "",
                      "| benchmark | figure | utilisation | note |", "| --- | --- | --- | --- |"]
        self.rows: list[tuple[Row, str]] = []

    def add(self, row: Row, command: str) -> None:
        self.lines.append(f"| {row.what} | {row.figure} | {row.utilisation or '-'} | {row.note} |")
        self.rows.append((row, command))
        print(self.lines[-1], flush=True)

    @property
    def section(self) -> str:
        return "\n".join(self.lines) + "\n"


def run(names: list[str], quick: bool = False) -> Run:
    """Run the named benchmarks, one row at a time as each is measured."""
    cifar = datasets.load_dataset("cifar10")
    done = Run()
    for name in names:
        command = f"python -m tests.bench --only {name}" + (" --quick" if quick else "")
        for row in rows_of(name, cifar, quick):
            done.add(Row(*row), command)
    return done


def rows_of(name: str, cifar: datasets.ImageDataset, quick: bool) -> Iterator[Row]:
    """The benchmark's rows; if it fails, the rows it gave and one that says so, so that the rest of a long run (a
    lent GPU's minutes) still comes back."""
    try:
        yield from BENCHMARKS[name](cifar, quick)
    except Exception as error:  # noqa: BLE001 - any failure becomes a row of the table
        traceback.print_exc()
        yield Row(f"{name}: failed", type(error).__name__, str(error).splitlines()[0][:300] if str(error) else "-")


def write(done: Run, path: Path = Path("BENCHMARKS.md"), log: Path = tables.LOG) -> None:
    """This machine's current table in `path` gets the run's figures; the log gets its whole table."""
    heading, words = tables.machine_table()
    path.write_text(tables.update(path.read_text(), heading, done.rows, tables.dated(done.date[:10], words)))
    tables.log(done.section, log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("--only", default="data,conv,course,fast,speedrun,streaming,transfer",
                        help=f"comma-separated benchmark names, of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="fewer epochs and batches")
    parser.add_argument("--output", default="BENCHMARKS.md", help="the file of current tables")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    unknown = [name for name in args.only.split(",") if name not in BENCHMARKS]
    if unknown:
        parser.error(f"no benchmark {unknown[0]!r}; the benchmarks are: {', '.join(BENCHMARKS)}")
    done = run(args.only.split(","), quick=args.quick)
    if not args.no_write:
        write(done, Path(args.output))
    print(done.section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
