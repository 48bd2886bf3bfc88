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


def objective(terms: Terms, kl_weight: float, gamma_a: float) -> Objective:
    """I = mean over sentences of rec + λ_KL·KL_z + γ_a·Σ_j KL_a_j."""
    rec, kl_z, kl_a = terms.rec.mean(), terms.kl_z.mean(), terms.kl_a.mean()
    loss = rec + kl_weight * kl_z + gamma_a * kl_a
    return Objective(loss, rec.item(), kl_z.item(), kl_a.item())


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
