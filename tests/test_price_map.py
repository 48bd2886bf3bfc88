"""The price map: its grid in params.yaml, the prices reaching training, the measures, and one
point and the report end to end through the stage CLIs."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, make_bundled, real_pairs, run_stage
from vae.config import ConfigError, load_params
from vae.objective import kl_weight
from vae.price_map import both_in_use, markdown, point_name, share_through_z
from vae.price_point import priced
import torch


def params_file(tmp_path: Path, sections: dict) -> Path:
    """The repository's params.yaml with the given keys of the given sections replaced."""
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    for section, values in sections.items():
        params.setdefault(section, {}).update(values)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def test_the_repository_grid_spans_at_least_four_by_four():
    grid = load_params(REPO / "params.yaml").price_map
    assert len(grid.kl_z_prices) >= 4 and len(grid.kl_a_prices) >= 4
    assert grid.variants and grid.reference


@pytest.mark.parametrize("change, key", [
    ({"variants": ["gaussian", "gumbel_"]}, "price_map.variants"),
    ({"variants": ["deterministic"]}, "price_map.variants"),
    ({"reference": "gumbel"}, "price_map.reference"),
    ({"reference": "plain"}, "price_map.reference"),  # no z to price
    ({"kl_z_prices": [0.1, 0.1]}, "price_map.kl_z_prices"),
    ({"kl_a_prices": [-1.0, 0.5]}, "price_map.kl_a_prices"),
    ({"kl_a_prices": ["cheap"]}, "price_map.kl_a_prices[0]"),
    ({"kl_a_prices": 0.5}, "price_map.kl_a_prices"),
])
def test_a_bad_grid_is_an_error_naming_its_key(tmp_path, change, key):
    with pytest.raises(ConfigError, match=re.escape(f"'{key}'")):
        load_params(params_file(tmp_path, {"price_map": change}))


def test_a_point_changes_the_two_prices_and_the_budget_only():
    params = load_params(REPO / "params.yaml", ["train.pricing.unit=token", "train.pricing.kl_a_weight=annealed",
                                                "train.kl.schedule=tanh"])
    variant, cfg = priced(params, "gumbel", 0.25, 0.005)
    assert variant == dataclasses.replace(params.variants["gumbel"], gamma_a=0.005)
    assert (cfg.pricing.unit, cfg.pricing.kl_a_weight) == ("sentence", "constant")  # the map's unit, whatever train says
    assert [kl_weight(step, cfg.kl) for step in (0, 10, 100_000)] == [0.25] * 3  # the stated price at every step
    budget = params.price_map
    assert cfg.label_smoothing == 0.0  # the reconstruction priced 1 per nat
    assert cfg == dataclasses.replace(params.train, max_pairs=budget.max_pairs, epochs=budget.epochs, kl=cfg.kl,
                                      pricing=cfg.pricing, label_smoothing=0.0)
    reference, _ = priced(params, budget.reference, 1.0, None)
    assert reference == params.variants[budget.reference]


def test_point_names_are_the_files_dvc_yaml_writes():
    dvc = Path(sys.executable).parent / "dvc"
    listing = subprocess.run([str(dvc), "stage", "list"], cwd=REPO, capture_output=True, text=True, timeout=120,
                             check=True).stdout
    written = set(re.findall(r"^price_map\S*\s+Outputs results/price_map/points/(\S+)\.json", listing, re.M))
    grid = load_params(REPO / "params.yaml").price_map
    expected = {point_name(v, z, a) for v in grid.variants for z in grid.kl_z_prices for a in grid.kl_a_prices}
    expected |= {point_name(grid.reference, z, None) for z in grid.kl_z_prices}
    assert written == expected


def point(dz, da, kl_a=1.0, bleu=10.0, **extra) -> dict:
    return {"delta_nll_z_zero": dz, "delta_nll_a_prior": da, "kl_a_per_token": kl_a, "bleu": bleu,
            "diverged_at_step": None, **extra}


def test_share_through_z_splits_the_reliance_and_ignores_negative_noise():
    assert share_through_z(point(0.3, 0.1)) == pytest.approx(0.75)
    assert share_through_z(point(-0.01, 0.2)) == 0.0
    assert share_through_z(point(0.0, 0.0)) is None and share_through_z(point(0.004, 0.004)) is None  # noise
    assert share_through_z(point(0.2, None)) is None  # the reference has no a


def test_the_claim_at_a_point_uses_the_claim_tables_rules():
    reference = point(0.1, None, kl_a=0.0, bleu=10.0, bleu_ci95=0.3)
    assert both_in_use(point(0.2, 0.5, kl_a=0.2, bleu=9.8), reference)
    assert not both_in_use(point(0.19, 0.5, kl_a=0.2, bleu=12.0), reference)  # z below 2× the reference's
    assert not both_in_use(point(0.5, 0.5, kl_a=0.09, bleu=12.0), reference)  # a collapsed
    assert not both_in_use(point(0.5, 0.5, kl_a=0.5, bleu=9.6), reference)  # BLEU below the reference's CI
    assert not both_in_use(point(0.5, 0.5), None)
    priced_out = point(-0.001, None, kl_a=0.0, bleu=10.0, bleu_ci95=0.3)  # the reference's z carries nothing
    assert not both_in_use(point(0.0, 0.5, kl_a=0.5, bleu=12.0), priced_out)  # so twice nothing is not "in use"
    assert both_in_use(point(0.05, 0.5, kl_a=0.5, bleu=12.0), priced_out)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """Tiny data, a tiny model and a 2×1 grid, through the data stages' CLIs."""
    root = tmp_path_factory.mktemp("price-map")
    make_bundled(root / "data/europarl-v7-fr-en-sample100k", real_pairs(300), stem="europarl-v7.fr-en.sample100k")
    params_file(root, {
        "prepare": {"train_size": 200, "dev_size": 20, "test_size": 30},
        "tokenize": {"vocab_size": 200},
        "model": {"embedding_dim": 16, "hidden_size": 16, "z_dim": 8},
        "train": {"max_tokens": 400, "device": "cpu", "precision": "fp32"},
        "decode": {"max_length_slack": 3},
        "evaluate": {"bootstrap_samples": 50},
        "price_map": {"variants": ["gumbel"], "kl_z_prices": [0.25, 1.0], "kl_a_prices": [0.05], "max_pairs": 0, "epochs": 1,
                      "test_sentences": 20},
    })
    for stage in ("download", "prepare", "tokenize"):
        result = run_stage(stage, cwd=root)
        assert result.returncode == 0, result.stderr
    return root


def test_a_point_and_the_report_end_to_end(workspace):
    for args in (["--variant", "gumbel", "--kl-z", "0.25", "--kl-a", "0.05"], ["--variant", "deterministic", "--kl-z", "0.25"]):
        result = run_stage("price_map", *args, cwd=workspace)
        assert result.returncode == 0, result.stderr
    gumbel = json.loads((workspace / "results/price_map/points/gumbel-z0.25-a0.05.json").read_text())
    reference = json.loads((workspace / "results/price_map/points/deterministic-z0.25.json").read_text())
    assert gumbel["kl_weight"] == 0.25 and gumbel["kl_a_price"] == 0.05 and gumbel["train_pairs"] == 200
    assert gumbel["test_sentences"] == 20 and gumbel["steps"] > 0
    assert gumbel["delta_nll_a_prior"] is not None and gumbel["delta_nll_z_zero"] is not None
    assert reference["delta_nll_a_prior"] is None and reference["kl_a_price"] is None
    assert "bs:50" in gumbel["bleu_signature"]
    trained = torch.load(workspace / "checkpoints/price_map/gumbel-z0.25-a0.05/last.pt", weights_only=True)["setup"]
    assert trained["variant"]["gamma_a"] == 0.05 and trained["train"]["kl"]["schedule"] == "constant"
    assert trained["train"]["pricing"] == {"unit": "sentence", "kl_a_weight": "constant"}

    result = run_stage("price_map_report", cwd=workspace)
    assert result.returncode == 0, result.stderr
    table = (workspace / "results/price_map/README.md").read_text()
    assert "| `gumbel` | 0.25 | 0.05 |" in table and "| `deterministic` | 0.25 | – |" in table
    assert (workspace / "results/price_map/maps/gumbel.png").stat().st_size > 0
    assert "Not yet run (2): `gumbel-z1.0-a0.05`, `deterministic-z1.0`" in table


def test_a_point_outside_the_grid_is_refused(workspace):
    result = run_stage("price_map", "--variant", "plain", "--kl-z", "0.25", "--kl-a", "0.05", cwd=workspace)
    assert result.returncode == 1 and "price_map.variants" in result.stderr and "Traceback" not in result.stderr
    result = run_stage("price_map", "--variant", "gumbel", "--kl-z", "0.25", cwd=workspace)
    assert result.returncode == 1 and "--kl-a" in result.stderr


def test_a_diverged_point_is_a_row_not_a_crash():
    params = load_params(REPO / "params.yaml")
    rows = markdown([{"name": "gumbel-z1.0-a0.05", "variant": "gumbel", "kl_z_price": 1.0, "kl_a_price": 0.05,
                      "diverged_at_step": 7}], params)
    line = next(row for row in rows.splitlines() if row.startswith("| `gumbel`"))
    header = next(row for row in rows.splitlines() if row.startswith("| variant"))
    assert "diverged at step 7" in line and line.count("|") == header.count("|")
