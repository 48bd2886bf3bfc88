"""Attention and its latent versions: KL terms, Gumbel-softmax, gradients, and padding."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Categorical, kl_divergence

from vae.config import VariantConfig
from vae.model.attention import (
    DeterministicAttention,
    GaussianAttention,
    GumbelAttention,
    NoAttention,
    build_attention,
    categorical_kl_uniform,
    gumbel_softmax,
)
from vae.model.latent import gaussian_kl

QUERY, MEMORY = 16, 32
LENGTHS = [7, 5, 3, 1]  # includes a full row and a single-token source


def mask_for(lengths, steps=None) -> torch.Tensor:
    steps = steps or max(lengths)
    return torch.arange(steps)[None, :] < torch.tensor(lengths)[:, None]


def inputs(seed=0, lengths=LENGTHS, tgt_len=5):
    g = torch.Generator().manual_seed(seed)
    mask = mask_for(lengths)
    queries = torch.randn(len(lengths), tgt_len, QUERY, generator=g)
    memory = torch.randn(len(lengths), mask.size(1), MEMORY, generator=g)
    return queries, memory, mask


def modules(seed=0):
    torch.manual_seed(seed)
    return {
        "deterministic": DeterministicAttention(QUERY, MEMORY),
        "gaussian": GaussianAttention(QUERY, MEMORY, "standard"),
        "gaussian_encoder_mean": GaussianAttention(QUERY, MEMORY, "encoder_mean"),
        "gumbel": GumbelAttention(QUERY, MEMORY, hard=False),
        "gumbel_hard": GumbelAttention(QUERY, MEMORY, hard=True),
    }


# --- categorical KL against a uniform prior ----------------------------------------------


def masked_log_probs(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return F.log_softmax(logits.masked_fill(~mask[:, None, :], -1e9), dim=-1)


def test_categorical_kl_uniform_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    lengths = [6, 4, 2, 1, 5]
    mask = mask_for(lengths)
    logits = torch.randn(len(lengths), 3, mask.size(1), generator=g) * 3
    got = categorical_kl_uniform(masked_log_probs(logits, mask), mask)
    assert got.shape == (len(lengths), 3)
    for b, n in enumerate(lengths):
        for j in range(3):
            q = Categorical(logits=logits[b, j, :n])
            p = Categorical(probs=torch.full((n,), 1.0 / n))
            expected = kl_divergence(q, p)
            torch.testing.assert_close(got[b, j], expected, rtol=1e-5, atol=1e-6)
    assert (got >= -1e-6).all()
    assert torch.equal(got[3], torch.zeros(3))  # one position: q is the prior


def test_categorical_kl_uniform_extremes():
    mask = mask_for([4])
    uniform = torch.full((1, 1, 4), math.log(0.25))
    torch.testing.assert_close(categorical_kl_uniform(uniform, mask), torch.zeros(1, 1), atol=1e-6, rtol=0)
    one_hot = torch.tensor([[[0.0, -1e9, -1e9, -1e9]]])  # all mass on one of 4 positions: KL = log 4
    torch.testing.assert_close(categorical_kl_uniform(one_hot, mask), torch.full((1, 1), math.log(4)))


def test_categorical_kl_uniform_ignores_padded_entries_exactly():
    g = torch.Generator().manual_seed(1)
    mask = mask_for([6, 4, 2, 1])
    log_probs = masked_log_probs(torch.randn(4, 3, 6, generator=g), mask)
    clean = categorical_kl_uniform(log_probs, mask)
    for garbage in (torch.randn(4, 3, 6, generator=g) * 100, torch.full((4, 3, 6), 50.0), torch.full((4, 3, 6), -1e30)):
        dirty = torch.where(mask[:, None, :], log_probs, garbage)
        assert torch.equal(categorical_kl_uniform(dirty, mask), clean)


@pytest.mark.parametrize("name", ["deterministic", "gaussian", "gaussian_encoder_mean", "gumbel"])
def test_attention_outputs_ignore_padded_memory_exactly(name):
    """Changing the encoder states (hence the logits) at padded positions changes nothing."""
    module = modules()[name].eval()
    queries, memory, mask = inputs()
    noise = torch.randn(memory.shape, generator=torch.Generator().manual_seed(5)) * 10
    dirty = torch.where(mask[..., None], memory, noise)
    a, b = module(queries, memory, mask, sample=False), module(queries, dirty, mask, sample=False)
    assert torch.equal(a.weights, b.weights)
    assert torch.equal(a.kl, b.kl)
    torch.testing.assert_close(a.context, b.context, rtol=0, atol=0)


# --- Gumbel-softmax ----------------------------------------------------------------------------


def test_gumbel_softmax_argmax_frequencies_match_probabilities():
    torch.manual_seed(0)
    probs = torch.tensor([0.45, 0.25, 0.15, 0.1, 0.05, 0.0])
    log_probs = torch.log(probs).clamp_min(-1e9)  # the last one is padding
    n = 20_000
    samples = gumbel_softmax(log_probs.expand(n, -1), temperature=1.0, hard=False)
    freq = torch.bincount(samples.argmax(-1), minlength=6).float() / n
    torch.testing.assert_close(freq, probs, atol=0.02, rtol=0)
    assert freq[-1] == 0
    torch.testing.assert_close(samples.sum(-1), torch.ones(n))


def test_gumbel_softmax_low_temperature_is_nearly_one_hot():
    """The gap between the two largest perturbed logits is ~Exp(1), so E[1 − max y] ≈ τ·ln 2:
    about 0.035 at τ = 0.05 and 0.007 at τ = 0.01."""
    torch.manual_seed(1)
    log_probs = F.log_softmax(torch.randn(2000, 7), dim=-1)
    cold = gumbel_softmax(log_probs, temperature=0.05, hard=False)
    assert cold.max(-1).values.mean() > 0.95
    assert (cold.max(-1).values > 0.99).float().mean() > 0.8
    colder = gumbel_softmax(log_probs, temperature=0.01, hard=False)
    assert colder.max(-1).values.mean() > 0.99
    warm = gumbel_softmax(log_probs, temperature=5.0, hard=False)
    assert warm.max(-1).values.mean() < 0.9  # the check above can fail


def test_gumbel_softmax_hard_is_one_hot_forward_with_gradients():
    torch.manual_seed(2)
    logits = torch.randn(64, 6, requires_grad=True)
    y = gumbel_softmax(F.log_softmax(logits, -1), temperature=1.0, hard=True)
    assert torch.equal(y, F.one_hot(y.argmax(-1), 6).float())
    (y * torch.randn(64, 6)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    assert torch.isfinite(logits.grad).all()


def test_gumbel_softmax_soft_sample_gradients_reach_logits():
    torch.manual_seed(3)
    logits = torch.randn(16, 5, requires_grad=True)
    y = gumbel_softmax(F.log_softmax(logits, -1), temperature=0.7, hard=False)
    assert not torch.equal(y, F.one_hot(y.argmax(-1), 5).float())
    (y * torch.randn(16, 5)).sum().backward()
    assert (logits.grad.abs().sum(-1) > 0).all()


def test_gumbel_softmax_is_random():
    torch.manual_seed(4)
    log_probs = F.log_softmax(torch.randn(8, 5), -1)
    assert not torch.equal(gumbel_softmax(log_probs, 1.0, False), gumbel_softmax(log_probs, 1.0, False))


# --- gradients through the latent attentions --------------------------------------------------


def test_gaussian_attention_gradients_reach_mu_and_sigma_through_the_sample():
    module = modules()["gaussian"].train()
    queries, memory, mask = inputs()
    torch.manual_seed(0)
    out = module(queries, memory, mask, sample=True)
    out.context.pow(2).sum().backward()  # the sample only, no KL
    assert module.project.weight.grad.abs().sum() > 0  # μ: attention scores
    for layer in (module.to_logvar[0], module.to_logvar[2]):  # σ
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_gaussian_attention_mean_path_does_not_touch_sigma():
    module = modules()["gaussian"]
    queries, memory, mask = inputs()
    out = module(queries, memory, mask, sample=False)
    out.context.pow(2).sum().backward()
    assert module.project.weight.grad.abs().sum() > 0
    assert module.to_logvar[2].weight.grad is None


def test_gaussian_attention_mean_and_kl():
    mods = modules()
    queries, memory, mask = inputs()
    det = DeterministicAttention(QUERY, MEMORY)
    for name in ("gaussian", "gaussian_encoder_mean"):
        module = mods[name]
        det.load_state_dict({"project.weight": module.project.weight})
        out = module(queries, memory, mask, sample=False)
        ref = det(queries, memory, mask, sample=False)
        torch.testing.assert_close(out.context, ref.context)
        assert torch.equal(out.weights, ref.weights)
        logvar = module.to_logvar(ref.context)
        if name == "gaussian":
            prior = 0.0
        else:
            prior = torch.stack([memory[b, :n].mean(0) for b, n in enumerate(LENGTHS)])[:, None, :]
        torch.testing.assert_close(out.kl, gaussian_kl(ref.context, logvar, prior))
        torch.manual_seed(0)
        sampled = module(queries, memory, mask, sample=True)
        assert not torch.allclose(sampled.context, out.context)
        torch.testing.assert_close(sampled.kl, out.kl)  # KL is of q, not of the sample


@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_attention_gradients_reach_scores(hard):
    module = GumbelAttention(QUERY, MEMORY, hard=hard, tau0=0.5, tau_min=0.5)
    queries, memory, mask = inputs()
    torch.manual_seed(0)
    out = module(queries, memory, mask, sample=True)
    out.context.pow(2).sum().backward()
    assert module.project.weight.grad.abs().sum() > 0
    torch.testing.assert_close(out.context, torch.bmm(out.weights, memory))


def test_gumbel_attention_kl_is_categorical_kl_of_the_mean_weights():
    module = modules()["gumbel"]
    queries, memory, mask = inputs()
    out = module(queries, memory, mask, sample=False)
    torch.testing.assert_close(out.kl, categorical_kl_uniform(out.weights.log(), mask))
    assert torch.equal(out.kl[3], torch.zeros(5))  # a one-token source: α equals the prior


# --- padding never gets weight --------------------------------------------------------------------


@pytest.mark.parametrize("name", list(modules()))
@pytest.mark.parametrize("sample", [False, True])
def test_padding_gets_exactly_zero_weight(name, sample):
    module = modules()[name]
    queries, memory, mask = inputs(seed=3)
    torch.manual_seed(1)
    out = module(queries, memory, mask, sample=sample)
    padded = ~mask[:, None, :].expand_as(out.weights)
    assert padded.any()
    assert torch.equal(out.weights[padded], torch.zeros(int(padded.sum())))
    torch.testing.assert_close(out.weights.sum(-1), torch.ones(out.weights.shape[:2]))
    assert torch.equal(out.weights[3, :, 0], torch.ones(5))  # the only real position of a 1-token source
    assert out.context.shape == (4, 5, MEMORY) and out.kl.shape == (4, 5)


def test_deterministic_attention_has_no_kl():
    module = modules()["deterministic"]
    queries, memory, mask = inputs()
    out = module(queries, memory, mask, sample=True)
    assert torch.equal(out.kl, torch.zeros(4, 5))
    torch.testing.assert_close(out.context, torch.bmm(out.weights, memory))


def test_build_attention_kinds():
    variant = VariantConfig(gumbel_hard=True, gaussian_prior="encoder_mean", gumbel_tau0=0.7, gumbel_tau_min=0.7)

    def build(kind):
        return build_attention(QUERY, MEMORY, dataclasses.replace(variant, attention=kind))

    none = build("none")
    assert isinstance(none, NoAttention) and none.context_size == 0 and not none.latent
    deterministic = build("deterministic")
    assert type(deterministic) is DeterministicAttention and not deterministic.latent
    gaussian = build("gaussian")
    assert isinstance(gaussian, GaussianAttention) and gaussian.prior == "encoder_mean" and gaussian.latent
    gumbel = build("gumbel")
    assert isinstance(gumbel, GumbelAttention) and gumbel.hard and gumbel.latent
    assert gumbel.schedule_values() == {"temperature": pytest.approx(0.7)}
    with pytest.raises(ValueError, match="unknown attention"):
        build_attention(QUERY, MEMORY, SimpleNamespace(attention="bogus"))


def test_no_attention_gives_an_empty_context_and_no_kl():
    queries, memory, mask = inputs()
    out = NoAttention()(queries, memory, mask, sample=True)
    assert out.context.shape == (4, 5, 0) and torch.equal(out.kl, torch.zeros(4, 5)) and out.weights is None


def test_gumbel_temperature_is_the_module_schedule_and_reaches_the_sampler():
    module = GumbelAttention(QUERY, MEMORY, hard=False, tau0=2.0, tau_min=0.01, anneal_rate=0.01)
    queries, memory, mask = inputs()
    module.set_step(0)
    assert float(module.temperature) == pytest.approx(2.0)
    torch.manual_seed(0)
    warm = module(queries, memory, mask, sample=True).weights
    module.set_step(1000)  # 2·e^-10 < τ_min
    assert float(module.temperature) == pytest.approx(0.01)
    torch.manual_seed(0)
    cold = module(queries, memory, mask, sample=True).weights
    assert cold.max(-1).values.mean() > 0.95 > warm.max(-1).values.mean()  # τ, not 1, reached the sampler
    # Saved with the weights: a reloaded model samples at the temperature it was trained at.
    fresh = GumbelAttention(QUERY, MEMORY, hard=False, tau0=2.0, tau_min=0.01, anneal_rate=0.01)
    fresh.load_state_dict(module.state_dict())
    assert float(fresh.temperature) == pytest.approx(0.01)


@pytest.mark.parametrize("name", ["gaussian", "gaussian_encoder_mean", "gumbel"])
def test_a_from_the_prior_is_the_prior_mean(name):
    module = modules()[name]
    queries, memory, mask = inputs()
    posterior = module(queries, memory, mask, sample=False)
    prior = module(queries, memory, mask, sample=True, a_source="prior")
    torch.testing.assert_close(prior.kl, posterior.kl)  # the KL is still that of q
    lengths = mask.sum(-1)
    mean_state = torch.stack([memory[b, :n].mean(0) for b, n in enumerate(lengths.tolist())])[:, None, :]
    if name == "gaussian":
        assert torch.equal(prior.context, torch.zeros_like(prior.context))
    elif name == "gaussian_encoder_mean":
        torch.testing.assert_close(prior.context, mean_state.expand_as(prior.context))
    else:  # uniform weights over the real positions: the context is h̄ too
        torch.testing.assert_close(prior.weights, (mask[:, None, :] / lengths[:, None, None]).expand_as(prior.weights))
        torch.testing.assert_close(prior.context, mean_state.expand_as(prior.context))


def test_gaussian_init_logvar_sets_the_starting_noise_level():
    torch.manual_seed(0)
    from vae.model.attention import GaussianAttention

    quiet = GaussianAttention(8, 12, "standard", init_logvar=-6.0)
    default = GaussianAttention(8, 12, "standard")
    context = torch.randn(3, 5, 12)
    assert quiet.to_logvar(context).mean().item() == pytest.approx(-6.0, abs=0.5)
    assert default.to_logvar(context).mean().abs().item() < 0.5
