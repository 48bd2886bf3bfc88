"""One point of the price map (vae.price_map): train a variant at the map's budget with KL_z priced
λ and KL(a) priced γ, then measure where its information went.

The objective is rec + λ·KL_z + γ·Σ_j KL(a_j) summed per sentence (vae.objective's `sentence`
unit), λ and γ constant from step 0 and the reconstruction the true NLL (no label smoothing), so
that a nat of information costs λ through z, γ through a and 1 in the reconstruction.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from vae.batching import Pairs
from vae.checkpoint import resolve_device
from vae.config import KLScheduleConfig, Params, PricingConfig, TrainConfig, VariantConfig
from vae.diagnostics import active_units, nll_per_token, posterior_moments
from vae.metrics import bleu_with_ci
from vae.price_map import point_name
from vae.search import SearchSettings, translate_ids
from vae.tokenizer import Tokenizers
from vae.train import TrainingDiverged, setup_for, train


def priced(params: Params, variant: str, kl_z: float, kl_a: float | None) -> tuple[VariantConfig, TrainConfig]:
    """The variant and training settings of one point: the map's budget and the two prices."""
    cfg, budget = params.train, params.price_map
    chosen = params.variants[variant]
    if kl_a is not None:
        chosen = dataclasses.replace(chosen, gamma_a=kl_a)
    # λ constant from step 0: a warm-up longer than the map's short runs would leave a point
    # trained below its stated price (the root run's 1,500 warm-up steps exceed a 20k-pair epoch);
    # no label smoothing: a smoothed reconstruction would not price a nat of information at 1
    kl = KLScheduleConfig(schedule="constant", max_weight=kl_z)
    return chosen, dataclasses.replace(cfg, max_pairs=budget.max_pairs, epochs=budget.epochs, kl=kl,
                                       pricing=PricingConfig(), label_smoothing=0.0)


def run_point(params: Params, variant: str, kl_z: float, kl_a: float | None, data: Path, checkpoints: Path,
              references: list[str]) -> dict:
    """Train one point (resuming from `checkpoints`) and measure it; a diverged run is a result."""
    chosen, cfg = priced(params, variant, kl_z, kl_a)
    train_pairs = Pairs.load(data / "encoded" / "train.pt", cfg.max_pairs)
    point = {"name": point_name(variant, kl_z, kl_a), "variant": variant, "attention": chosen.attention,
             "kl_z_price": kl_z, "kl_a_price": kl_a, "train_pairs": len(train_pairs), "epochs": cfg.epochs,
             "max_minutes": cfg.max_minutes, "precision": cfg.precision, "beam_size": params.decode.beam_size}
    setup = setup_for(params.model, chosen, cfg, data, train_pairs)
    try:
        model, run = train(setup, train_pairs, Pairs.load(data / "encoded" / "dev.pt"), checkpoints,
                           label=f"price map {point['name']}")
    except TrainingDiverged as err:
        return point | {"diverged_at_step": err.step, "error": str(err)}
    test = Pairs.load(data / "encoded" / "test.pt", params.price_map.test_sentences)
    measured = measure(model, test, references[: len(test)], Tokenizers.load(data / "tokenizer"), params,
                       resolve_device(cfg.device))
    return point | {"diverged_at_step": None, "steps": run.step, "train_minutes": round(run.train_seconds / 60, 2),
                    "kl_weight": run.history[-1]["kl_weight"], "dev_nll_per_token": run.kept()["dev_nll_per_token"]} | measured


def measure(model, test: Pairs, references: list[str], tokenizers: Tokenizers, params: Params, device) -> dict:
    """KLs, the two ablations, active units and BLEU ± CI of one trained model on `test`."""
    decode = params.decode

    def nll(**kwargs) -> dict:
        return nll_per_token(model, test, decode.max_tokens, device, **kwargs)

    means = nll()
    out = {"test_sentences": len(test), "nll_per_token": means["nll"], "kl_z_per_token": means["kl_z"],
           "kl_a_per_token": means["kl_a"], "delta_nll_z_zero": None, "delta_nll_a_prior": None}
    if model.latent is not None:
        mu, _ = posterior_moments(model, test, decode.max_tokens, device)
        out |= {"delta_nll_z_zero": nll(z_source="zero")["nll"] - means["nll"], "active_units": active_units(mu),
                "z_dim": mu.size(1)}
    if model.decoder.attention.latent:
        out["delta_nll_a_prior"] = nll(a_source="prior")["nll"] - means["nll"]
    hypotheses = translate_ids(model, [s.tolist() for s in test.src], SearchSettings.from_config(decode),
                               decode.max_tokens, device)
    return out | bleu_with_ci(tokenizers.tgt.decode(hypotheses), references, params.evaluate.bootstrap_samples)
