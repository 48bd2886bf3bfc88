"""Training curves the DVC way: DVCLive writes each logged value's history
(`<dir>/plots/metrics/<name>.tsv`, one row per logged step) and the latest values (`<dir>/metrics.json`),
which `dvc exp show`, `dvc plots` and the VS Code extension read while a run trains.

A run that resumes from a checkpoint continues the same files: rows logged after the checkpoint's step
(by a run killed before its next checkpoint) are dropped first, so that every step appears once.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

from dvclive import Live

from vae.io import write_lines


def _keep_until(tsv: Path, step: int) -> None:
    """Drop the rows of a DVCLive history file logged after `step`."""
    with tsv.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    if not rows or "step" not in rows[0]:
        return
    column = rows[0].index("step")
    kept = [rows[0]] + [row for row in rows[1:] if int(row[column]) <= step]
    if len(kept) < len(rows):
        write_lines(tsv, ["\t".join(row) for row in kept])


def open_log(directory: Path, resume_step: int) -> Live:
    """A DVCLive logger writing into `directory`: a fresh one (earlier files removed) at step 0, or the
    earlier run's continued after its checkpoint at `resume_step`. It neither makes a DVC experiment
    nor edits a dvc.yaml: the stage is already part of one (plots are defined in dvc.yaml)."""
    logging.getLogger("dvclive").setLevel(logging.WARNING)  # its INFO lines would interleave with the progress bar
    os.environ.setdefault("DVCLIVE_OPEN", "false")
    if resume_step and (directory / "metrics.json").is_file():
        for tsv in sorted((directory / "plots" / "metrics").rglob("*.tsv")):
            _keep_until(tsv, resume_step)
        live = Live(str(directory), resume=True, save_dvc_exp=False, dvcyaml=False)
    else:
        live = Live(str(directory), save_dvc_exp=False, dvcyaml=False)
    return live


# What the summary (metrics.json, a DVC metric) keeps of the logged values: enough to follow a run in
# `dvc exp show` and `dvc metrics show` while it trains, few enough that a terminal shows them.
SUMMARY = {"epoch", "train/loss", "dev/nll", "dev/kl_z", "dev/kl_a"}


def _forget(summary: dict, name: str) -> None:
    *parents, leaf = name.split("/")
    node = summary
    for part in parents:
        node = node.get(part, {})
    node.pop(leaf, None)
    if parents and not summary.get(parents[0]):
        summary.pop(parents[0], None)


def log(live: Live, step: int, values: dict[str, float]) -> None:
    """Record `values` at optimiser step `step` (each in its history) and rewrite the summary that
    `dvc exp show` reads, which keeps only the names in SUMMARY."""
    live.step = step
    for name, value in values.items():
        live.log_metric(name, float(value))
        if name not in SUMMARY:
            _forget(live.summary, name)
    live.make_summary()
