"""benchmarks/attention_use.py: uniform attention measures as uniform, and reading a wrong source costs
nothing to a model that cannot see its source."""

import sys

import pytest
import torch

from conftest import REPO, random_pairs
from vae.batching import Pairs
from vae.config import ModelConfig, VariantConfig
from vae.model import build_model

sys.path.insert(0, str(REPO / "benchmarks"))
from attention_use import attention_use  # noqa: E402

TINY = ModelConfig(embedding_dim=16, hidden_size=16, z_dim=8, dropout=0.0)


def plain_model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(30, 30, TINY, VariantConfig(latent_z=False, attention="deterministic")).eval()


def pairs(n: int = 12) -> Pairs:
    src, tgt = random_pairs(n, seed=5)
    return Pairs(list(src), list(tgt))


def test_attention_with_constant_scores_is_uniform():
    model = plain_model()
    torch.nn.init.zeros_(model.decoder.attention.project.weight)  # every score 0: α_j uniform over the source
    out = attention_use(model, pairs(), torch.device("cpu"))
    assert out["attention_entropy"] == pytest.approx(out["uniform_entropy"], abs=1e-5)
    assert out["uniform_entropy"] > 1.0  # sources of 3..8 tokens + </s>


def test_a_model_blind_to_its_source_loses_nothing_with_a_wrong_one():
    model = plain_model()
    out = attention_use(model, pairs(), torch.device("cpu"))
    assert out["dnll_wrong_source"] != pytest.approx(0.0, abs=1e-4)  # an untrained model still reads it
    for p in model.encoder.parameters():
        torch.nn.init.zeros_(p)
    blind = attention_use(model, pairs(), torch.device("cpu"))
    assert blind["dnll_wrong_source"] == pytest.approx(0.0, abs=1e-6)
