"""Attention and its latent versions: the one place where the variants differ.

All mechanisms score decoder states against encoder states with the same bilinear form
e_ji = s_jᵀ W h_i (Luong et al., 2015, "general"), computed for every step j at once, and
return a context c_j per step plus the KL of their latent (zero when there is none):

- DeterministicAttention: c_j = Σ_i α_ji h_i, α_j = softmax(e_j) — the standard form.
- GaussianAttention: a_j ~ q(a_j|X) = N(μ_j, diag σ_j²) with μ_j = Σ_i α_ji h_i and σ_j
  predicted from μ_j; prior N(0, I) or N(h̄, I) with h̄ the mean encoder state
  (Bahuleyan et al., 2018, §3.2).
- GumbelAttention: the weights themselves are latent, a_j ~ Cat(α_j) over the non-padding
  source positions, relaxed with Gumbel-softmax at temperature τ (Jang et al., 2017;
  Maddison et al., 2017); prior uniform; c_j = Σ_i a_ji h_i.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vae.model.latent import gaussian_kl, reparameterise

MASKED = -1e9  # finite, so that q·log q is 0 (not NaN) at padding, in fp32 and bf16 alike


@dataclass
class Attended:
    context: torch.Tensor  # (batch, tgt_len, memory_size)
    kl: torch.Tensor  # (batch, tgt_len): KL[q(a_j|X) || p(a_j)] per step, zeros if a is not latent
    weights: torch.Tensor  # (batch, tgt_len, src_len): α (or the sampled a for Gumbel)


class DeterministicAttention(nn.Module):
    """α_j = softmax_i(s_jᵀ W h_i) over non-padding positions; c_j = Σ_i α_ji h_i."""

    def __init__(self, query_size: int, memory_size: int):
        super().__init__()
        self.project = nn.Linear(query_size, memory_size, bias=False)

    def log_weights(self, queries: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
        """log α: (batch, tgt_len, src_len); padding gets probability exactly 0."""
        scores = torch.bmm(self.project(queries), memory.transpose(1, 2)).float()
        scores = scores.masked_fill(~src_mask[:, None, :], MASKED)
        return F.log_softmax(scores, dim=-1)

    def forward(self, queries, memory, src_mask, sample: bool, temperature: float = 1.0) -> Attended:
        weights = self.log_weights(queries, memory, src_mask).exp()
        context = torch.bmm(weights.to(memory.dtype), memory)
        return Attended(context, queries.new_zeros(queries.shape[:2], dtype=torch.float32), weights)


class GaussianAttention(DeterministicAttention):
    """a_j ~ N(μ_j, diag σ_j²), μ_j the deterministic context, log σ_j² = W₂ tanh(W₁ μ_j)."""

    def __init__(self, query_size: int, memory_size: int, prior: str, init_logvar: float = 0.0):
        super().__init__(query_size, memory_size)
        self.to_logvar = nn.Sequential(nn.Linear(memory_size, memory_size), nn.Tanh(),
                                       nn.Linear(memory_size, memory_size))
        # σ ≈ 1 at the start drowns contexts of norm ≪ 1 in noise, and the decoder may learn to
        # ignore a before the KL lets σ shrink; a negative start keeps the signal visible.
        # 0 keeps PyTorch's default initialisation (log σ² ≈ 0), as in the committed runs.
        if init_logvar != 0.0:
            nn.init.constant_(self.to_logvar[-1].bias, init_logvar)
        self.prior = prior

    def forward(self, queries, memory, src_mask, sample: bool, temperature: float = 1.0) -> Attended:
        attended = super().forward(queries, memory, src_mask, sample)
        mu = attended.context.float()
        logvar = self.to_logvar(attended.context).float()
        prior_mu = 0.0
        if self.prior == "encoder_mean":
            mask = src_mask[..., None].to(memory.dtype)
            prior_mu = ((memory * mask).sum(1) / mask.sum(1)).float()[:, None, :]  # (batch, 1, memory)
        context = reparameterise(mu, logvar) if sample else mu
        return Attended(context.to(memory.dtype), gaussian_kl(mu, logvar, prior_mu), attended.weights)


def gumbel_softmax(log_probs: torch.Tensor, temperature: float, hard: bool) -> torch.Tensor:
    """y = softmax((log α + g)/τ), g ~ Gumbel(0, 1); `hard` takes argmax forward, y's gradient back."""
    uniform = torch.rand_like(log_probs).clamp_(1e-10, 1.0 - 1e-7)
    y = F.softmax((log_probs - torch.log(-torch.log(uniform))) / temperature, dim=-1)
    if hard:
        one_hot = F.one_hot(y.argmax(-1), y.size(-1)).to(y.dtype)
        y = one_hot - y.detach() + y
    return y


def categorical_kl_uniform(log_probs: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
    """KL[Cat(α) || Uniform(n)] = Σ_i α_i log α_i + log n, n the non-padding source length."""
    neg_entropy = torch.where(src_mask[:, None, :], log_probs.exp() * log_probs, 0.0).sum(-1)
    return neg_entropy + src_mask.sum(-1, keepdim=True).float().log()


class GumbelAttention(DeterministicAttention):
    """a_j ~ Cat(α_j), relaxed by Gumbel-softmax at temperature τ; prior uniform over the source."""

    def __init__(self, query_size: int, memory_size: int, hard: bool):
        super().__init__(query_size, memory_size)
        self.hard = hard

    def forward(self, queries, memory, src_mask, sample: bool, temperature: float = 1.0) -> Attended:
        log_probs = self.log_weights(queries, memory, src_mask)
        weights = gumbel_softmax(log_probs, temperature, self.hard) if sample else log_probs.exp()
        context = torch.bmm(weights.to(memory.dtype), memory)
        return Attended(context, categorical_kl_uniform(log_probs, src_mask), weights)


def build_attention(kind: str, query_size: int, memory_size: int, variant) -> nn.Module | None:
    """The attention module a variant asks for (None: no attention at all)."""
    if kind == "none":
        return None
    if kind == "deterministic":
        return DeterministicAttention(query_size, memory_size)
    if kind == "gaussian":
        return GaussianAttention(query_size, memory_size, variant.gaussian_prior, variant.gaussian_init_logvar)
    if kind == "gumbel":
        return GumbelAttention(query_size, memory_size, variant.gumbel_hard)
    raise ValueError(f"unknown attention kind {kind!r}")


def gumbel_temperature(step: int, tau0: float, tau_min: float, rate: float) -> float:
    """τ(t) = max(τ_min, τ₀·exp(−r·t)); r = 0 keeps τ₀ constant (Jang et al., 2017, §2.2)."""
    return tau0 if rate == 0 else max(tau_min, tau0 * math.exp(-rate * step))
