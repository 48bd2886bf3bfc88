"""The sentence latent z: its Gaussian KL, the reparameterised sample, and SentenceLatent."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vae.model.latent import SentenceLatent, gaussian_kl, reparameterise


def reference_kl(mu, logvar, prior_mu):
    prior_mu = torch.as_tensor(prior_mu, dtype=mu.dtype).expand_as(mu)
    q = Normal(mu, (0.5 * logvar).exp())
    p = Normal(prior_mu, torch.ones_like(mu))
    return kl_divergence(q, p).sum(-1)


@pytest.mark.parametrize("prior", ["zero", "scalar", "tensor"])
def test_gaussian_kl_matches_torch_distributions(prior):
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(7, 5, 8, generator=g, dtype=torch.float64) * 2
    logvar = torch.randn(7, 5, 8, generator=g, dtype=torch.float64)
    prior_mu = {"zero": 0.0, "scalar": 1.5, "tensor": torch.randn(7, 1, 8, generator=g, dtype=torch.float64)}[prior]
    got = gaussian_kl(mu, logvar, prior_mu)
    assert got.shape == (7, 5)
    torch.testing.assert_close(got, reference_kl(mu, logvar, prior_mu), rtol=1e-10, atol=1e-10)
    assert (got >= 0).all()


def test_gaussian_kl_default_prior_is_standard_normal():
    g = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    torch.testing.assert_close(gaussian_kl(mu, logvar), reference_kl(mu, logvar, 0.0), rtol=1e-5, atol=1e-5)


def test_gaussian_kl_is_zero_exactly_at_the_prior():
    mu = torch.full((3, 8), 0.7)
    assert torch.equal(gaussian_kl(mu, torch.zeros(3, 8), 0.7), torch.zeros(3))
    assert torch.equal(gaussian_kl(torch.zeros(3, 8), torch.zeros(3, 8)), torch.zeros(3))


def test_gaussian_kl_nonzero_prior_differs_from_standard():
    mu, logvar = torch.zeros(2, 8), torch.zeros(2, 8)
    # KL[N(0, I) || N(m, I)] = ½ Σ m² = ½ · 8 · 4
    torch.testing.assert_close(gaussian_kl(mu, logvar, 2.0), torch.full((2,), 16.0))


def test_reparameterise_moments_and_gradients():
    torch.manual_seed(0)
    mu = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
    logvar = torch.tensor([0.0, 1.0, -2.0], requires_grad=True)
    samples = reparameterise(mu.expand(50_000, 3), logvar.expand(50_000, 3))
    torch.testing.assert_close(samples.mean(0), mu.detach(), atol=0.03, rtol=0)
    torch.testing.assert_close(samples.std(0), (0.5 * logvar.detach()).exp(), atol=0.03, rtol=0.02)
    samples.pow(2).mean().backward()
    assert mu.grad.abs().min() > 0
    assert logvar.grad.abs().min() > 0


def test_sentence_latent_mean_when_not_sampling_and_gradient_to_both_heads():
    torch.manual_seed(0)
    latent = SentenceLatent(16, 8)
    summary = torch.randn(5, 16)
    out = latent(summary, sample=False)
    assert torch.equal(out.z, out.mu)
    assert out.kl.shape == (5,)
    torch.testing.assert_close(out.kl, gaussian_kl(out.mu, out.logvar))
    sampled = latent(summary, sample=True)
    assert not torch.equal(sampled.z, sampled.mu)
    torch.testing.assert_close(sampled.mu, out.mu)
    sampled.z.pow(2).sum().backward()
    assert latent.to_mu.weight.grad.abs().sum() > 0
    assert latent.to_logvar.weight.grad.abs().sum() > 0
