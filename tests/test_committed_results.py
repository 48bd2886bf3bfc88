"""The results committed at the repository's root belong to the committed params.yaml and were
written by the pipeline: what `dvc metrics show` prints in a fresh clone is what `dvc repro`
produced with these settings."""

import hashlib
from pathlib import Path

import yaml

from vae.experiments import flatten

REPO = Path(__file__).resolve().parents[1]


def locked_stages() -> dict:
    return yaml.safe_load((REPO / "dvc.lock").read_text(encoding="utf-8"))["stages"]


def test_every_locked_stage_ran_with_the_committed_params():
    params = flatten(yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8")))
    stale = sorted({f"{key} was {value!r} for the committed results, params.yaml has {params.get(key, '(missing)')!r}"
                    for entry in locked_stages().values()
                    for key, value in flatten(entry.get("params", {}).get("params.yaml", {})).items()
                    if params.get(key, "(missing)") != value})
    assert not stale, ("params.yaml changed since the committed run; re-run `dvc repro` and commit dvc.lock "
                       "with its results, or keep the old values:\n" + "\n".join(stale))


def test_the_committed_result_files_are_the_ones_the_run_wrote():
    checked, edited = 0, []
    for stage, entry in locked_stages().items():
        for out in entry.get("outs", []):
            path = REPO / out["path"]
            if not out["path"].startswith("results/") or out["md5"].endswith(".dir"):
                continue  # cached outputs live in the DVC cache, not in git
            checked += 1
            if not path.is_file() or hashlib.md5(path.read_bytes()).hexdigest() != out["md5"]:
                edited.append(f"{stage}: {out['path']}")
    assert checked >= 2  # at least the data stages' metrics
    assert not edited, "changed or missing since `dvc repro` wrote them (dvc.lock):\n" + "\n".join(edited)
