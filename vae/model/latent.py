"""The sentence latent z: q(z|X) = N(μ, diag σ²) from the encoder summary, prior p(z) = N(0, I)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, prior_mu: torch.Tensor | float = 0.0) -> torch.Tensor:
    """KL[N(μ, diag e^logvar) || N(prior_mu, I)] summed over the last dimension.

    = ½ Σ_d (σ_d² + (μ_d − m_d)² − 1 − log σ_d²)
    """
    return 0.5 * (logvar.exp() + (mu - prior_mu).pow(2) - 1.0 - logvar).sum(-1)


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean over sentences of KL[q(z_d|x) || N(0, 1)] for each dimension d: (n, z_dim) → (z_dim,)."""
    return gaussian_kl(mu[..., None], logvar[..., None]).mean(0)


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = μ + σ·ε, ε ~ N(0, I): a sample whose gradient reaches μ and σ (Kingma & Welling, 2014)."""
    return mu + (0.5 * logvar).exp() * torch.randn_like(mu)


@dataclass
class LatentSample:
    z: torch.Tensor  # (batch, z_dim): a sample when sampling, else the mean
    mu: torch.Tensor  # (batch, z_dim)
    logvar: torch.Tensor  # (batch, z_dim)
    kl: torch.Tensor  # (batch,)


class SentenceLatent(nn.Module):
    """Maps the encoder summary to q(z|X) and draws z (or takes its mean at evaluation)."""

    def __init__(self, input_size: int, z_dim: int):
        super().__init__()
        self.to_mu = nn.Linear(input_size, z_dim)
        self.to_logvar = nn.Linear(input_size, z_dim)

    def forward(self, summary: torch.Tensor, sample: bool) -> LatentSample:
        mu, logvar = self.to_mu(summary), self.to_logvar(summary)
        z = reparameterise(mu, logvar) if sample else mu
        return LatentSample(z=z, mu=mu, logvar=logvar, kl=gaussian_kl(mu, logvar))
