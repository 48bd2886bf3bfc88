"""The training objective and its schedules (Bahuleyan et al., 2018, eq. 6).

    I = I_rec + λ_KL(t) · KL[q(z|X) || p(z)] + γ_a · Σ_j KL[q(a_j|X) || p(a_j)]

I_rec = −E_q log p(Y | z, a, X). Every term is a per-sentence sum, averaged over the batch,
so I is the negative ELBO per sentence when λ_KL = γ_a = 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vae.config import KLScheduleConfig
from vae.model import Terms


@dataclass
class Objective:
    loss: torch.Tensor  # scalar to minimise
    rec: float  # batch means per sentence, for logging
    kl_z: float
    kl_a: float


def objective(terms: Terms, kl_weight: float, gamma_a: float, sentences: float | None = None) -> Objective:
    """I = rec + λ_KL·KL_z + γ_a·Σ_j KL_a_j summed over the batch and divided by `sentences`.

    By default `sentences` is the batch size: the mean per sentence. A data-parallel rank holds
    a share of a global batch of B sentences and passes B / ranks, so that DDP's average of the
    ranks' gradients is the gradient of the global batch's mean, however the shares are sized.
    """
    n = terms.rec.numel() if sentences is None else sentences
    rec, kl_z, kl_a = terms.rec.sum() / n, terms.kl_z.sum() / n, terms.kl_a.sum() / n
    loss = weighted(rec, kl_z, kl_a, kl_weight, gamma_a)
    return Objective(loss, rec.item(), kl_z.item(), kl_a.item())


def weighted(rec, kl_z, kl_a, kl_weight: float, gamma_a: float):
    """rec + λ_KL·KL_z + γ_a·KL_a, for tensors or plain numbers (dev totals)."""
    return rec + kl_weight * kl_z + gamma_a * kl_a


def kl_weight(step: int, cfg: KLScheduleConfig) -> float:
    """λ_KL at optimiser step `step`.

    - constant: max_weight throughout.
    - linear: rises from 0 to max_weight over warmup_steps (Bowman et al., 2016).
    - sigmoid: max_weight · σ(10·(step/warmup_steps − ½)), centred on half the warm-up.
    - cyclical: periods of `cycle_steps`; each rises linearly over the first `ratio` of
      its period, then holds max_weight (Fu et al., 2019).
    """
    if cfg.schedule == "constant":
        return cfg.max_weight
    if cfg.schedule == "linear":
        return cfg.max_weight * min(1.0, step / cfg.warmup_steps)
    if cfg.schedule == "sigmoid":
        return cfg.max_weight / (1.0 + math.exp(-10.0 * (step / cfg.warmup_steps - 0.5)))
    phase = (step % cfg.cycle_steps) / cfg.cycle_steps
    return cfg.max_weight * min(1.0, phase / cfg.ratio)
