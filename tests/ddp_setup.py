"""The tiny job that test_distributed.py runs both as one process and as torchrun ranks."""

from __future__ import annotations

import torch

import conftest
from vae.batching import Pairs, collate
from vae.config import KLScheduleConfig, ModelConfig, TrainConfig, VariantConfig
from vae.model import Seq2SeqVAE, build_model
from vae.train import Setup

VOCAB = 30
VARIANTS = {
    "plain": VariantConfig(latent_z=False, attention="deterministic"),
    "none": VariantConfig(attention="none"),
    "deterministic": VariantConfig(attention="deterministic"),
    "gaussian": VariantConfig(attention="gaussian", gamma_a=0.5),
    "gumbel": VariantConfig(attention="gumbel", gamma_a=0.5),
}
MODEL = ModelConfig(embedding_dim=16, hidden_size=16, z_dim=8, dropout=0.0)


def random_pairs(n: int, seed: int) -> Pairs:
    return Pairs(*conftest.random_pairs(n, seed, hi=11, vocab=VOCAB))


def train_data() -> tuple[Pairs, Pairs]:
    return random_pairs(64, seed=0), random_pairs(16, seed=1)


GRADIENT_PAIRS = random_pairs(7, seed=2)  # odd: the two ranks' shares differ in size


def batch_of(indices: list[int]):
    return collate([GRADIENT_PAIRS.src[i] for i in indices], [GRADIENT_PAIRS.tgt[i] for i in indices])


def gradient_setup(name: str) -> tuple[Seq2SeqVAE, list[int]]:
    torch.manual_seed(0)
    model = build_model(VOCAB, VOCAB, MODEL, VARIANTS[name]).train()
    return model, list(range(len(GRADIENT_PAIRS)))


def train_setup(epochs: int) -> Setup:
    """No dropout and no latent noise (the plain variant): one process and N ranks must agree."""
    train = TrainConfig(epochs=epochs, max_tokens=120, learning_rate=3e-3, seed=5, device="cpu",
                        kl=KLScheduleConfig(schedule="constant", max_weight=1.0))
    return Setup(MODEL, VARIANTS["plain"], train, VOCAB, VOCAB, 64)
