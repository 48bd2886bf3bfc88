"""The τ and γ_a studies: one latent-attention setting changed per run, everything else as in the
main table but at the study's budget. Each run reports BLEU, KL, attention entropy and how
stably it trained; a run whose loss becomes NaN is a result ("diverged at step t"), not a crash.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from pathlib import Path

import torch

from vae.batching import Pairs
from vae.checkpoint import resolve_device
from vae.config import Params
from vae.diagnostics import attention_entropy, nll_per_token, teacher_forced_attention
from vae.metrics import corpus_scores
from vae.search import SearchSettings, translate_ids
from vae.tokenizer import Tokenizers
from vae.train import TrainingDiverged, setup_for, train


def run_study(params: Params, name: str, data: Path, checkpoints: Path, references: list[str]) -> tuple[dict, list]:
    """Train, decode and measure one study run; returns its metrics and per-epoch history."""
    variant = params.study_variant(name)
    cfg = dataclasses.replace(params.train, max_pairs=params.study.max_pairs, epochs=params.study.epochs)
    train_pairs = Pairs.load(data / "encoded" / "train.pt", cfg.max_pairs)
    tokenizers = Tokenizers.load(data / "tokenizer")
    setup = setup_for(params.model, variant, cfg, data, train_pairs)
    settings = {"run": name, "attention": variant.attention, "gamma_a": variant.gamma_a,
                "tau0": variant.gumbel_tau0, "tau_min": variant.gumbel_tau_min,
                "anneal_rate": variant.gumbel_anneal_rate, "train_pairs": len(train_pairs), "epochs": cfg.epochs}
    try:
        model, run = train(setup, train_pairs, Pairs.load(data / "encoded" / "dev.pt"), checkpoints, label=f"study {name}")
    except TrainingDiverged as err:
        return {**settings, "diverged_at_step": err.step, "error": str(err)}, []

    device = resolve_device(cfg.device)
    test = Pairs.load(data / "encoded" / "test.pt", params.study.test_sentences)
    measured = nll_per_token(model, test, params.decode.max_tokens, device)  # a at its mean: no τ involved
    hypotheses = translate_ids(model, [s.tolist() for s in test.src], SearchSettings.from_config(params.decode),
                               params.decode.max_tokens, device)
    entropies = []
    for start in range(0, len(test), 100):  # chunks: one pass over all of them would hold every context
        chunk = Pairs(test.src[start:start + 100], test.tgt[start:start + 100])
        weights, _, mask = teacher_forced_attention(model, chunk, device)  # Gumbel: the categorical α itself
        entropies.append(attention_entropy(weights, mask))
    history = run.history
    selected = run.kept()
    metrics = {**settings, "diverged_at_step": None,
               **corpus_scores(tokenizers.tgt.decode(hypotheses), references[: len(test)]),
               "test_sentences": len(test), "nll_per_token": measured["nll"],
               "kl_z_per_token": measured["kl_z"], "kl_a_per_token": measured["kl_a"],
               "attention_entropy": float(torch.cat(entropies).mean()),
               "uniform_attention_entropy": uniform_entropy(test),
               "loss_spikes": sum(row["loss_spikes"] for row in history),
               "grad_norm_max": max(row["grad_norm_max"] for row in history),
               "best_epoch": selected["epoch"], "dev_nll_per_token": selected["dev_nll_per_token"],
               "mean_epoch_seconds": sum(row["epoch_seconds"] for row in history) / len(history)}
    return metrics, history


def uniform_entropy(pairs: Pairs) -> float:
    """Mean entropy of a uniform attention over the source (+ </s>) per target step (+ </s>):
    the ceiling that attention_entropy is compared with."""
    steps = [len(t) + 1 for t in pairs.tgt]
    return sum(n * math.log(len(s) + 1) for n, s in zip(steps, pairs.src)) / sum(steps)


def temperature_rows(studies: list[dict]) -> list[dict]:
    """The τ study: the Gumbel runs at the γ_a most of them share (the γ_a study's runs each have
    their own), fixed τ ascending, annealed ones last."""
    gumbel = [s for s in studies if s["attention"] == "gumbel"]
    if not gumbel:
        return []
    shared = Counter(s["gamma_a"] for s in gumbel).most_common(1)[0][0]
    rows = [s for s in gumbel if math.isclose(s["gamma_a"], shared)]
    return sorted(rows, key=lambda s: (s["anneal_rate"] > 0, s["tau0"], s["tau_min"]))


def gamma_rows(studies: list[dict]) -> dict[str, list[dict]]:
    """The γ_a study per latent attention: Gaussian runs, and Gumbel runs at a fixed τ = 1."""
    def fixed_unit_tau(s):
        return s["anneal_rate"] == 0 and s["tau0"] == 1.0 and s["tau_min"] == 1.0

    out = {"gaussian": [s for s in studies if s["attention"] == "gaussian"],
           "gumbel": [s for s in studies if s["attention"] == "gumbel" and fixed_unit_tau(s)]}
    return {k: sorted(v, key=lambda s: s["gamma_a"]) for k, v in out.items() if v}
