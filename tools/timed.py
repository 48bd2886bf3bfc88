"""Run a command and record its wall time in results/timings.tsv, the file the README's times come from.

    python3 tools/timed.py make test
    python3 tools/timed.py --note "fresh clone" make repro

Each row: the command, when it started (UTC), its wall seconds, its exit status, the CPU model and core
count, the commit it ran at, and a note. tests/test_docs_numbers.py checks that the README quotes the
latest successful row of `make repro` and `make test`. Standard library only: it runs before the venv exists.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMINGS = ROOT / "results" / "timings.tsv"
COLUMNS = ["command", "started_utc", "wall_s", "exit_status", "cpu_model", "cores", "commit", "note"]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def append(row: dict) -> None:
    new = not TIMINGS.is_file()
    with TIMINGS.open("a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, COLUMNS, delimiter="\t", lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerow(row)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--note", default="")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if not args.command:
        parser.error("give the command to time")
    started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    head, start = commit(), time.monotonic()
    status = subprocess.call(args.command, cwd=ROOT)
    append({"command": " ".join(args.command), "started_utc": started, "wall_s": f"{time.monotonic() - start:.0f}",
            "exit_status": status, "cpu_model": cpu_model(), "cores": len(os.sched_getaffinity(0)),
            "commit": head, "note": args.note})
    return status


if __name__ == "__main__":
    sys.exit(main())
