"""The training objective, its prices and schedules (Bahuleyan et al., 2018, eq. 6).

    I = I_rec + λ_KL(t) · KL[q(z|X) || p(z)] + γ_a(t) · Σ_j KL[q(a_j|X) || p(a_j)]

I_rec = −E_q log p(Y | z, a, X). `train.pricing` says in which unit the terms are priced:

- unit "sentence" (ours): every term is a per-sentence sum, averaged over the batch's B sentences,
      I = (1/B) Σ_n [rec_n + λ·KL_z,n + γ_a·Σ_j KL_a,nj],
  the negative ELBO per sentence when λ_KL = γ_a = 1.
- unit "token" (the authors' code, tf-var-attention `ved_varAttn`): the reconstruction and
  Σ_j KL_a of each sentence are divided by its T_n target tokens, KL_z is not,
      I = (1/B) Σ_n [rec_n/T_n + λ·KL_z,n + γ_a·Σ_j KL_a,nj/T_n],
  so, relative to the reconstruction, z costs T_n (≈ 23 tokens per sentence here) times more
  than under "sentence" at the same λ. (The authors sum over the batch instead of averaging:
  a constant factor that Adam does not see.)

`train.pricing.kl_a_steps` whether Σ_j KL_a,nj runs over all of sentence n's target steps ("all", the
paper's equation) or is the last step's KL_a,nJ alone ("last": how the authors' code reads, its
per-step KL kept in a Python attribute of a `tf.while_loop` traced once; docs/pricing.md (c)),
and `train.pricing.kl_a_weight` whether γ_a(t) = γ_a ("constant") or γ_a·λ_KL(t) ("annealed",
the authors': KL(a) is as free as KL(z) early in training and frozen with it).

Two further prices of a variant, both 0 by default:
- free nats δ (`kl_a_free_nats`): Σ_j KL_a,nj is replaced by max(Σ_j KL_a,nj, δ·T_n), so a
  sentence's a carries up to δ nats per target token without cost (free bits, Kingma et al., 2016,
  per sentence rather than per dimension group).
- β (`attention_kl_price`): + β·Σ_j KL[α_nj || uniform] (divided by T_n under "token"), an entropy
  bonus on deterministic attention weights, the Gumbel a's KL term without its noise.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from vae.config import KLScheduleConfig, TrainConfig, VariantConfig
from vae.model import Terms


@dataclass(frozen=True)
class Prices:
    """The weights and unit of one step's objective."""

    kl_z: float  # λ_KL(t)
    kl_a: float  # γ_a(t)
    unit: str  # "sentence" | "token": the unit of the reconstruction and Σ_j KL_a
    kl_a_free: float = 0.0  # δ: free nats of KL_a per target token
    attention: float = 0.0  # β: price of Σ_j KL[α_j || uniform]
    kl_a_steps: str = "all"  # "all": Σ_j KL_a over the target steps | "last": the last step's alone


def prices(step: int, cfg: TrainConfig, variant: VariantConfig) -> Prices:
    """The prices at optimiser step `step`."""
    return _priced(kl_weight(step, cfg.kl), cfg, variant)


def settled_prices(cfg: TrainConfig, variant: VariantConfig) -> Prices:
    """The prices once λ_KL has settled: the objective a checkpoint is chosen by, the same for every
    epoch (the unweighted ELBO would prefer an early epoch of a model whose KL_a grows while its NLL falls)."""
    return _priced(settled_kl_weight(cfg.kl), cfg, variant)


def _priced(weight: float, cfg: TrainConfig, variant: VariantConfig) -> Prices:
    gamma_a = variant.gamma_a * weight if cfg.pricing.kl_a_weight == "annealed" else variant.gamma_a
    return Prices(weight, gamma_a, cfg.pricing.unit, variant.kl_a_free_nats, variant.attention_kl_price,
                  cfg.pricing.kl_a_steps)


def per_sentence(terms: Terms, p: Prices) -> torch.Tensor:
    """I_n for each sentence (batch,): see the module docstring."""
    length = terms.tokens.clamp(min=1).to(terms.rec.dtype) if p.unit == "token" else 1.0
    kl_a = terms.kl_a_last if p.kl_a_steps == "last" else terms.kl_a
    kl_a = torch.maximum(kl_a, p.kl_a_free * terms.tokens.to(kl_a.dtype)) if p.kl_a_free else kl_a
    loss = terms.rec / length + p.kl_z * terms.kl_z + p.kl_a * kl_a / length
    if p.attention:
        loss = loss + p.attention * terms.attention_kl / length
    return loss


@dataclass
class Objective:
    loss: torch.Tensor  # scalar to minimise
    rec: float  # batch means per sentence, for logging
    kl_z: float
    kl_a: float
    sentence_loss: float  # I with every term per sentence, whatever the pricing's unit: the logged loss


def objective(terms: Terms, p: Prices, sentences: float | None = None) -> Objective:
    """I for one batch: the mean of I_n over its sentences.

    By default `sentences` is the batch size. A data-parallel rank holds a share of a global batch
    of B sentences and passes B / ranks, so that DDP's average of the ranks' gradients is the
    gradient of the global batch's I, however the shares are sized.
    """
    n = terms.rec.numel() if sentences is None else sentences
    loss = per_sentence(terms, p).sum() / n
    with torch.no_grad():  # the logged loss is never differentiated
        logged = loss if p.unit == "sentence" else per_sentence(terms, dataclasses.replace(p, unit="sentence")).sum() / n
    return Objective(loss, terms.rec.sum().item() / n, terms.kl_z.sum().item() / n, terms.kl_a.sum().item() / n,
                     logged.item())


def kl_weight(step: int, cfg: KLScheduleConfig) -> float:
    """λ_KL at optimiser step `step`.

    - constant: max_weight throughout.
    - linear: rises from 0 to max_weight over warmup_steps (Bowman et al., 2016).
    - sigmoid: max_weight · σ(10·(step/warmup_steps − ½)), centred on half the warm-up.
    - cyclical: periods of `cycle_steps`; each rises linearly over the first `ratio` of
      its period, then holds max_weight (Fu et al., 2019).
    - tanh: max_weight · (tanh((step − tanh_centre)/tanh_width) + 1)/2, the authors' schedule
      (tf-var-attention: centre 4500, width 1000, held from step 3000 on, where λ ≈ 0.047).
    With freeze_step > 0, λ keeps its value at freeze_step from then on.
    """
    if cfg.freeze_step:
        step = min(step, cfg.freeze_step)
    if cfg.schedule == "constant":
        return cfg.max_weight
    if cfg.schedule == "linear":
        return cfg.max_weight * min(1.0, step / cfg.warmup_steps)
    if cfg.schedule == "sigmoid":
        return cfg.max_weight / (1.0 + math.exp(-10.0 * (step / cfg.warmup_steps - 0.5)))
    if cfg.schedule == "tanh":
        return cfg.max_weight * (math.tanh((step - cfg.tanh_centre) / cfg.tanh_width) + 1.0) / 2.0
    phase = (step % cfg.cycle_steps) / cfg.cycle_steps
    return cfg.max_weight * min(1.0, phase / cfg.ratio)


def settled_kl_weight(cfg: KLScheduleConfig) -> float:
    """The value λ_KL settles at: its frozen value, else its limit (max_weight for a cyclical schedule)."""
    if cfg.schedule == "cyclical" and not cfg.freeze_step:
        return cfg.max_weight
    return kl_weight(10**12, cfg)
