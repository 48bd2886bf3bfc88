"""Attention and its latent versions: the one place where the variants differ.

Every mechanism is an `Attention`: it scores decoder states against encoder states with the
bilinear form e_ji = s_jᵀ W h_i (Luong et al., 2015, "general"), computed for every step j at
once, and returns a context c_j per step plus the KL of its latent (zero when there is none).
Each one says of itself whether it attends (`context_size`) and whether its a is latent
(`latent`), and owns what only it needs (the Gumbel temperature schedule), so that variant
names appear only in the config and in `build_attention`.

- NoAttention: no context at all (the decoder sees the source through z or its initial state).
- DeterministicAttention: c_j = Σ_i α_ji h_i, α_j = softmax(e_j) — the standard form.
- GaussianAttention: a_j ~ q(a_j|X) = N(μ_j, diag σ_j²) with μ_j = Σ_i α_ji h_i and σ_j
  predicted from μ_j; prior N(0, I) or N(h̄, I) with h̄ the mean encoder state
  (Bahuleyan et al., 2018, §3.2).
- GumbelAttention: the weights themselves are latent, a_j ~ Cat(α_j) over the non-padding
  source positions, relaxed with Gumbel-softmax at temperature τ (Jang et al., 2017;
  Maddison et al., 2017); prior uniform; c_j = Σ_i a_ji h_i.

`a_source` says what the decoder gets as a: "posterior" (a draw from q(a|X) when sampling,
else its mean) or "prior" (the prior's mean: N(0, I) → 0, N(h̄, I) → h̄, uniform weights),
the ablation that asks how much the decoder relies on a.
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
    context: torch.Tensor  # (batch, tgt_len, context_size)
    kl: torch.Tensor  # (batch, tgt_len): KL[q(a_j|X) || p(a_j)] per step, zeros if a is not latent
    weights: torch.Tensor | None  # (batch, tgt_len, src_len): α (or the sampled a for Gumbel); None without attention
    logvar: torch.Tensor | None = None  # (batch, tgt_len, memory): log σ² of the Gaussian a, None for the others
    # (batch, tgt_len): KL[α_j || uniform] = log n − H(α_j) of the attention weights (zeros without
    # attention); the Gumbel a's KL term, and for the others what `attention_kl_price` charges
    weights_kl: torch.Tensor | None = None


class Attention(nn.Module):
    """What every mechanism offers the decoder; subclasses override `forward`."""

    latent = False  # is a a random variable with a prior (and a KL term)?

    def __init__(self, context_size: int):
        super().__init__()
        self.context_size = context_size

    @property
    def attends(self) -> bool:
        """Does the decoder get a context from the source at each step?"""
        return self.context_size > 0

    def set_step(self, step: int) -> None:
        """Called by the trainer before each optimiser step: for schedules the mechanism owns."""

    def schedule_values(self) -> dict[str, float]:
        """The current values of those schedules, for the training log."""
        return {}

    def forward(self, queries, memory, src_mask, sample: bool, a_source: str = "posterior") -> Attended:
        raise NotImplementedError


class NoAttention(Attention):
    """The null mechanism: an empty context, no KL."""

    def __init__(self):
        super().__init__(context_size=0)

    def forward(self, queries, memory, src_mask, sample: bool, a_source: str = "posterior") -> Attended:
        batch, steps = queries.shape[:2]
        zeros = queries.new_zeros(batch, steps, dtype=torch.float32)
        return Attended(queries.new_zeros(batch, steps, 0), zeros, None, weights_kl=zeros)


class DeterministicAttention(Attention):
    """α_j = softmax_i(s_jᵀ W h_i) over non-padding positions; c_j = Σ_i α_ji h_i."""

    def __init__(self, query_size: int, memory_size: int):
        super().__init__(context_size=memory_size)
        self.project = nn.Linear(query_size, memory_size, bias=False)

    def log_weights(self, queries: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor:
        """log α: (batch, tgt_len, src_len); padding gets probability exactly 0."""
        scores = torch.bmm(self.project(queries), memory.transpose(1, 2)).float()
        scores = scores.masked_fill(~src_mask[:, None, :], MASKED)
        return F.log_softmax(scores, dim=-1)

    def forward(self, queries, memory, src_mask, sample: bool, a_source: str = "posterior") -> Attended:
        log_weights = self.log_weights(queries, memory, src_mask)
        weights = log_weights.exp()
        context = torch.bmm(weights.to(memory.dtype), memory)
        return Attended(context, queries.new_zeros(queries.shape[:2], dtype=torch.float32), weights,
                        weights_kl=categorical_kl_uniform(log_weights, src_mask))


class GaussianAttention(DeterministicAttention):
    """a_j ~ N(μ_j, diag σ_j²), μ_j the deterministic context, log σ_j² = W₂ tanh(W₁ μ_j)."""

    latent = True

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

    def prior_mean(self, memory: torch.Tensor, src_mask: torch.Tensor) -> torch.Tensor | float:
        """0 for N(0, I); the mean non-padding encoder state h̄ (batch, 1, memory) for N(h̄, I)."""
        if self.prior == "standard":
            return 0.0
        mask = src_mask[..., None].to(memory.dtype)
        return ((memory * mask).sum(1) / mask.sum(1)).float()[:, None, :]

    def forward(self, queries, memory, src_mask, sample: bool, a_source: str = "posterior") -> Attended:
        log_weights = self.log_weights(queries, memory, src_mask)
        weights = log_weights.exp()
        mu = torch.bmm(weights.to(memory.dtype), memory)
        mu, logvar = mu.float(), self.to_logvar(mu).float()  # the moments of q(a_j|X), in fp32
        prior_mu = self.prior_mean(memory, src_mask)
        if a_source == "prior":
            context = torch.zeros_like(mu) + prior_mu
        else:
            context = reparameterise(mu, logvar) if sample else mu
        return Attended(context.to(memory.dtype), gaussian_kl(mu, logvar, prior_mu), weights, logvar,
                        categorical_kl_uniform(log_weights, src_mask))


def gumbel_softmax(log_probs: torch.Tensor, temperature: float | torch.Tensor, hard: bool) -> torch.Tensor:
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


def gumbel_temperature(step: int, tau0: float, tau_min: float, rate: float) -> float:
    """τ(t) = max(τ_min, τ₀·exp(−r·t)); r = 0 keeps τ₀ constant (Jang et al., 2017, §2.2)."""
    return tau0 if rate == 0 else max(tau_min, tau0 * math.exp(-rate * step))


class GumbelAttention(DeterministicAttention):
    """a_j ~ Cat(α_j), relaxed by Gumbel-softmax at temperature τ(t); prior uniform over the source.

    τ(t) is this module's own schedule: the trainer only tells it the step. The current τ is a
    buffer, saved with the weights, so a trained model samples at the temperature it ended with."""

    latent = True

    def __init__(self, query_size: int, memory_size: int, hard: bool, tau0: float = 1.0, tau_min: float = 1.0,
                 anneal_rate: float = 0.0):
        super().__init__(query_size, memory_size)
        self.hard, self.tau0, self.tau_min, self.anneal_rate = hard, tau0, tau_min, anneal_rate
        self.register_buffer("temperature", torch.tensor(float(tau0)))

    def schedule_values(self) -> dict[str, float]:
        return {"temperature": float(self.temperature)}

    def set_step(self, step: int) -> None:
        self.temperature.fill_(gumbel_temperature(step, self.tau0, self.tau_min, self.anneal_rate))

    def forward(self, queries, memory, src_mask, sample: bool, a_source: str = "posterior") -> Attended:
        log_probs = self.log_weights(queries, memory, src_mask)
        if a_source == "prior":
            weights = (src_mask[:, None, :] / src_mask.sum(-1)[:, None, None]).expand_as(log_probs).float()
        elif sample:
            weights = gumbel_softmax(log_probs, self.temperature, self.hard)
        else:
            weights = log_probs.exp()
        context = torch.bmm(weights.to(memory.dtype), memory)
        kl = categorical_kl_uniform(log_probs, src_mask)
        return Attended(context, kl, weights, weights_kl=kl)


def build_attention(query_size: int, memory_size: int, variant) -> Attention:
    """The attention module a variant asks for: the one place where `variant.attention` is read."""
    kind = variant.attention
    if kind == "none":
        return NoAttention()
    if kind == "deterministic":
        return DeterministicAttention(query_size, memory_size)
    if kind == "gaussian":
        return GaussianAttention(query_size, memory_size, variant.gaussian_prior, variant.gaussian_init_logvar)
    if kind == "gumbel":
        return GumbelAttention(query_size, memory_size, variant.gumbel_hard, variant.gumbel_tau0,
                               variant.gumbel_tau_min, variant.gumbel_anneal_rate)
    raise ValueError(f"unknown attention kind {kind!r}")
