"""Grouping the study runs into the τ and γ_a tables, and the uniform-attention ceiling."""

import math

import torch

from vae.batching import Pairs
from vae.report import study_table
from vae.study import gamma_rows, temperature_rows, uniform_entropy
from vae.train import Run


def run(name, attention="gumbel", gamma=0.05, tau0=1.0, tau_min=1.0, rate=0.0, diverged=None):
    return {"run": name, "attention": attention, "gamma_a": gamma, "tau0": tau0, "tau_min": tau_min,
            "anneal_rate": rate, "diverged_at_step": diverged}


def test_temperature_rows_keep_the_shared_gamma_and_put_annealed_last():
    runs = [run("annealed", tau0=2.0, tau_min=0.1, rate=0.003), run("t2", tau0=2.0, tau_min=2.0),
            run("t01", tau0=0.1, tau_min=0.1), run("g1", gamma=1.0), run("g02", gamma=0.2),
            run("gauss", attention="gaussian")]
    assert [r["run"] for r in temperature_rows(runs)] == ["t01", "t2", "annealed"]
    assert temperature_rows([run("gauss", attention="gaussian")]) == []


def test_gamma_rows_take_gumbel_runs_at_unit_tau_only():
    runs = [run("g1", gamma=1.0), run("g001", gamma=0.01), run("hot", gamma=0.2, tau0=2.0, tau_min=2.0),
            run("ga", attention="gaussian", gamma=0.2), run("gb", attention="gaussian", gamma=0.01)]
    groups = gamma_rows(runs)
    assert [r["run"] for r in groups["gumbel"]] == ["g001", "g1"]
    assert [r["run"] for r in groups["gaussian"]] == ["gb", "ga"]


def test_a_diverged_run_is_a_row_of_the_table():
    lines = study_table([run("t01", tau0=0.1, tau_min=0.1, diverged=42)], "τ")
    assert "diverged (NaN) at step 42" in lines[-1] and lines[-1].count("|") == lines[0].count("|")


def test_uniform_entropy_weights_each_sentence_by_its_target_steps():
    pairs = Pairs([torch.ones(3, dtype=torch.long), torch.ones(7, dtype=torch.long)],
                  [torch.ones(1, dtype=torch.long), torch.ones(3, dtype=torch.long)])
    # 2 steps over 4 positions, 4 steps over 8 (each side + </s>)
    assert math.isclose(uniform_entropy(pairs), (2 * math.log(4) + 4 * math.log(8)) / 6)


def test_the_kept_epoch_is_the_lowest_trained_objective_not_the_lowest_nll():
    history = [{"epoch": 1, "dev_loss": 5.0, "dev_nll_per_token": 4.0},
               {"epoch": 2, "dev_loss": 4.5, "dev_nll_per_token": 4.2},
               {"epoch": 3, "dev_loss": 4.5, "dev_nll_per_token": 4.1}]
    assert Run(history=history).kept()["epoch"] == 2
