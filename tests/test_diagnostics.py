"""Latent-use diagnostics: active units, the I(x;z) estimator, distinct-n and self-BLEU."""

import math

import pytest
import torch

from vae.diagnostics import active_units, distinct_n, diversity, mutual_information, self_bleu


def test_active_units_counts_dimensions_whose_mean_varies_across_sentences():
    torch.manual_seed(0)
    mu = torch.zeros(500, 6)
    mu[:, 0] = torch.randn(500)  # variance ≈ 1: active
    mu[:, 1] = 0.05 * torch.randn(500)  # variance ≈ 0.0025: inactive
    mu[:, 2] = 0.2 * torch.randn(500)  # variance ≈ 0.04: active
    assert active_units(mu) == 2


def test_mutual_information_is_near_zero_when_every_posterior_is_the_prior():
    torch.manual_seed(0)
    mu, logvar = torch.zeros(2000, 4), torch.zeros(2000, 4)
    assert abs(mutual_information(mu, logvar)) < 0.1


def test_mutual_information_reaches_log_n_when_posteriors_are_disjoint():
    torch.manual_seed(0)
    n = 300
    mu = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 2) * 10.0  # far apart
    logvar = torch.full((n, 2), -4.0)  # narrow
    # one z draw per x: the entropy term is exact, the density term has sampling noise of ~0.06
    assert mutual_information(mu, logvar) == pytest.approx(math.log(n), abs=0.15)


def test_distinct_n_and_self_bleu():
    assert distinct_n(["a b c", "a b c"], 1) == 0.5
    assert distinct_n(["a b c", "d e f"], 2) == 1.0
    same = [["the cat sat on the mat"] * 3, ["a dog ran in the park"] * 3]
    assert self_bleu(same) == pytest.approx(100.0)
    varied = [["the cat sat on the mat", "a dog slept", "birds sing loudly today"],
              ["a dog ran in the park", "rain fell all night", "the market opened late"]]
    assert self_bleu(varied) < 20.0
    assert diversity(varied)["distinct_2"] > diversity(same)["distinct_2"]


def test_collect_groups_experiments_that_differ_only_in_seed():
    from vae.experiments import collect

    def exp(name, seed, lr, bleu, processes=1):
        params = {"train": {"seed": seed, "learning_rate": lr, "processes": processes}}
        return {"rev": name * 8, "name": name, "error": None, "data": {
            "params": {"params.yaml": {"data": params}},
            "metrics": {"results/headline/gumbel.json": {"data": {"bleu": bleu, "chrf": 1.0}}}}}

    base = exp("base", 1, 0.001, 20.0)
    base["experiments"] = [{"revs": [exp("a", 2, 0.001, 22.0, processes=2)]}, {"revs": [exp("b", 3, 0.001, 24.0)]},
                           {"revs": [exp("c", 1, 0.01, 5.0)]}]
    workspace = {**exp("workspace", 9, 0.5, 99.0), "rev": "workspace"}
    groups = collect([workspace, base])["groups"]
    assert [(g["settings"], g["seeds"]) for g in groups] == [({"train.learning_rate": 0.001}, [1, 2, 3]),
                                                             ({"train.learning_rate": 0.01}, [1])]
    assert groups[0]["bleu"]["gumbel"] == {"mean": 22.0, "std": 2.0, "n": 3}
    assert groups[1]["bleu"]["gumbel"]["std"] is None


def test_active_units_of_one_sentence_are_not_measurable(recwarn):
    # the variance of one value is NaN: it used to read as "0 active units", with PyTorch's warning
    assert active_units(torch.randn(1, 6)) is None
    assert active_units(torch.randn(2, 6)) is not None
    assert not recwarn.list
