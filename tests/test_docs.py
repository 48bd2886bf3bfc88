"""The commands the documentation gives must still work with the current params schema."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from vae.config import load_params

REPO = Path(__file__).resolve().parents[1]


def documented_overrides(page: str, name: str) -> list[str]:
    text = (REPO / page).read_text(encoding="utf-8")
    line = next(line for line in text.splitlines() if line.startswith(f"dvc exp run -n {name} "))
    words = shlex.split(line)
    return [words[i + 1] for i, word in enumerate(words) if word == "-S"]


def test_authors_pricing_line_sets_what_the_page_says():
    overrides = documented_overrides("docs/pricing.md", "authors-pricing")
    params = load_params(REPO / "params.yaml", overrides)
    train = params.train
    assert (train.pricing.unit, train.pricing.kl_a_weight) == ("token", "annealed")
    assert (train.kl.schedule, train.kl.max_weight, train.kl.tanh_centre, train.kl.tanh_width,
            train.kl.freeze_step) == ("tanh", 1.0, 4500, 1000, 3000)
    assert params.variants["gaussian"].gamma_a == params.variants["gumbel"].gamma_a == 0.1
    assert params.variants["gaussian"].gaussian_prior == "encoder_mean"
    assert train.word_dropout == 0.25 and params.model.dropout == 0.2  # dropout_keep_prob 0.8
    assert all(v.attention_kl_price == 0 for v in params.variants.values())  # the authors have no entropy bonus
    assert re.search(r"frozen at 0\.0474", (REPO / "docs/pricing.md").read_text(encoding="utf-8"))
