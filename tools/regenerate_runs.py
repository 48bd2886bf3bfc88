"""Rewrite every kept run's RESULTS.md and headline/ (results/runs/) with today's vae.report, from the
run's own metrics.json and params.yaml (vae.runs); --check only lists the stale ones (exit 1).

    python tools/regenerate_runs.py           # after changing vae/report.py or vae/claim.py
    python tools/regenerate_runs.py --check
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vae.io import write_text  # noqa: E402 (the repository on the path when run as a script)
from vae.runs import generated_files, run_folders, stale_files  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", default=str(REPO / "results" / "runs"))
    p.add_argument("--check", action="store_true", help="list stale files, write nothing")
    args = p.parse_args()
    stale_any = False
    for folder in run_folders(args.runs):
        stale = stale_files(folder)
        stale_any |= bool(stale)
        for rel in stale:
            print(f"{folder / rel}: {'stale' if args.check else 'rewritten'}")
        if args.check or not stale:
            continue
        expected = generated_files(folder)
        for rel in stale:
            if rel in expected:
                write_text(folder / rel, expected[rel])
            else:  # a headline file of a variant the run does not have
                (folder / rel).unlink()
    return int(args.check and stale_any)


if __name__ == "__main__":
    sys.exit(main())
