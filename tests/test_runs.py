"""Kept runs (results/runs/): each folder's RESULTS.md and headline/ are, byte for byte, what today's
vae.report writes from the folder's own metrics.json and params.yaml (vae.runs)."""

from pathlib import Path

import pytest

from vae.config import ConfigError
from vae.runs import generated_files, load_run_params, run_folders, stale_files

RUNS = Path(__file__).resolve().parents[1] / "results" / "runs"
FOLDERS = run_folders(RUNS)


def test_the_kept_runs_are_found():
    names = {folder.relative_to(RUNS).as_posix() for folder in FOLDERS}
    assert {"cpu-80k-authors-2ep", "h200-80k-claim-6min-4k/default", "h200-80k-kl1.0-12ep"} <= names
    assert len(names) >= 12


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda f: f.relative_to(RUNS).as_posix())
def test_a_kept_runs_generated_files_are_todays(folder):
    stale = stale_files(folder)
    assert not stale, (f"{folder.relative_to(RUNS)}: {stale} missing or not what vae.report writes today from its "
                       "metrics.json and params.yaml; run `python tools/regenerate_runs.py` and commit them")


def test_stale_and_missing_files_are_found(tmp_path):
    source = RUNS / "cpu-80k-authors-2ep"
    for name in ("metrics.json", "params.yaml"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    for rel, text in generated_files(source).items():
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    assert stale_files(tmp_path) == []
    (tmp_path / "RESULTS.md").write_text((source / "RESULTS.md").read_text().replace("**holds**", "**does not hold**"))
    (tmp_path / "headline" / "plain.json").unlink()
    (tmp_path / "headline" / "old_variant.json").write_text("{}\n")
    assert stale_files(tmp_path) == ["RESULTS.md", "headline/plain.json", "headline/old_variant.json"]


def test_old_params_lose_only_their_obsolete_sections(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("study: {runs: {}}\nprice_map: {variants: []}\ntrain: {epochs: 3}\n")
    assert load_run_params(path).train.epochs == 3
    path.write_text("train: {epochs: 3}\nshop: {}\n")
    with pytest.raises(ConfigError, match="unknown key 'shop'"):
        load_run_params(path)
