"""The objective I = rec + λ_KL·KL_z + γ_a·Σ_j KL_a_j, the λ_KL schedules and the Gumbel τ schedule."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from vae.config import KLScheduleConfig, PricingConfig, TrainConfig, VariantConfig
from vae.model import Terms
from vae.model.attention import gumbel_temperature
from vae.objective import Prices, kl_weight, objective, per_sentence, prices, settled_kl_weight, settled_prices


def random_terms(seed=0, n=6) -> Terms:
    g = torch.Generator().manual_seed(seed)
    return Terms(rec=(torch.rand(n, generator=g) * 20).requires_grad_(), kl_z=torch.rand(n, generator=g) * 5,
                 kl_a=torch.rand(n, generator=g) * 3, tokens=torch.randint(1, 10, (n,), generator=g))


@pytest.mark.parametrize("lam, gamma", [(0.0, 0.0), (1.0, 1.0), (0.3, 2.5), (0.0, 1.0)])
def test_objective_is_mean_rec_plus_weighted_mean_kls(lam, gamma):
    terms = random_terms()
    result = objective(terms, Prices(lam, gamma, "sentence"))
    expected = terms.rec.mean() + lam * terms.kl_z.mean() + gamma * terms.kl_a.mean()
    torch.testing.assert_close(result.loss, expected)
    assert result.rec == pytest.approx(terms.rec.mean().item())
    assert result.kl_z == pytest.approx(terms.kl_z.mean().item())
    assert result.kl_a == pytest.approx(terms.kl_a.mean().item())
    result.loss.backward()  # a scalar with a gradient to the terms
    torch.testing.assert_close(terms.rec.grad, torch.full((6,), 1 / 6))


def test_objective_weights_change_the_loss():
    terms = random_terms(1)
    base = objective(terms, Prices(0.0, 0.0, "sentence")).loss
    assert objective(terms, Prices(1.0, 0.0, "sentence")).loss > base
    assert objective(terms, Prices(0.0, 1.0, "sentence")).loss > base
    torch.testing.assert_close(objective(terms, Prices(0.0, 0.0, "sentence")).loss, terms.rec.mean())


def test_token_pricing_is_the_authors_by_hand():
    # Two sentences of 3 and 1 target tokens: rec sums 6 and 2, KL_z 4 and 2, Σ_j KL_a 0.9 and 0.1.
    terms = Terms(rec=torch.tensor([6.0, 2.0]), kl_z=torch.tensor([4.0, 2.0]), kl_a=torch.tensor([0.9, 0.1]),
                  tokens=torch.tensor([3, 1]))
    # I_n = rec_n/T_n + λ KL_z,n + γ KL_a,n/T_n: (2 + 2 + 0.03) and (2 + 1 + 0.01), averaged
    assert objective(terms, Prices(0.5, 0.1, "token")).loss.item() == pytest.approx((4.03 + 3.01) / 2)
    # per sentence: (8 + 0.5·6 + 0.1·1) / 2
    assert objective(terms, Prices(0.5, 0.1, "sentence")).loss.item() == pytest.approx(5.55)
    # a data-parallel share of one sentence passes B / ranks = 1 for a batch of 2 on 2 ranks
    first = Terms(*(t[:1] for t in (terms.rec, terms.kl_z, terms.kl_a, terms.tokens)))
    assert objective(first, Prices(0.5, 0.1, "token"), sentences=1.0).loss.item() == pytest.approx(4.03)


def test_kl_a_weight_constant_or_annealed_with_lambda():
    kl = KLScheduleConfig(schedule="linear", max_weight=0.5, warmup_steps=100)
    constant = TrainConfig(kl=kl)
    annealed = TrainConfig(kl=kl, pricing=PricingConfig(unit="token", kl_a_weight="annealed"))
    variant = VariantConfig(attention="gaussian", gamma_a=0.1)
    assert prices(50, constant, variant) == Prices(0.25, 0.1, "sentence")
    assert prices(50, annealed, variant) == Prices(0.25, pytest.approx(0.025), "token")
    assert prices(0, annealed, variant).kl_a == 0.0  # a is free at the start, as in the authors' code
    assert settled_prices(annealed, variant) == Prices(0.5, pytest.approx(0.05), "token")
    extras = VariantConfig(attention="gaussian", gamma_a=0.1, kl_a_free_nats=0.25, attention_kl_price=0.2)
    assert prices(50, constant, extras) == Prices(0.25, 0.1, "sentence", kl_a_free=0.25, attention=0.2)


def test_free_nats_and_attention_price_by_hand():
    # two sentences of 4 and 2 target tokens; KL_a 0.9 is below δ·T = 0.25·4 = 1, 3.0 is above 0.25·2
    terms = Terms(rec=torch.tensor([6.0, 2.0]), kl_z=torch.tensor([4.0, 2.0]), kl_a=torch.tensor([0.9, 3.0]),
                  tokens=torch.tensor([4, 2]), attention_kl=torch.tensor([2.0, 1.0]))
    free = Prices(0.5, 0.1, "sentence", kl_a_free=0.25)
    # (6 + 0.5·4 + 0.1·max(0.9, 1)) and (2 + 0.5·2 + 0.1·max(3, 0.5))
    assert per_sentence(terms, free).tolist() == pytest.approx([8.1, 3.3])
    priced = Prices(0.5, 0.1, "sentence", attention=0.2)
    assert per_sentence(terms, priced).tolist() == pytest.approx([8.09 + 0.4, 3.3 + 0.2])
    per_token = Prices(0.5, 0.1, "token", kl_a_free=0.25, attention=0.2)
    # 6/4 + 2 + 0.1·1/4 + 0.2·2/4 and 2/2 + 1 + 0.1·3/2 + 0.2·1/2
    assert per_sentence(terms, per_token).tolist() == pytest.approx([3.625, 2.25])
    # the logged loss is every term per sentence, whatever the unit: (8.1 + 0.4 + 3.3 + 0.2) / 2
    assert objective(terms, per_token).sentence_loss == pytest.approx(6.0)
    assert objective(terms, dataclasses.replace(per_token, unit="sentence")).sentence_loss == pytest.approx(6.0)


def test_free_nats_stop_the_gradient_below_the_threshold():
    kl_a = torch.tensor([0.5, 3.0], requires_grad=True)
    terms = Terms(rec=torch.zeros(2), kl_z=torch.zeros(2), kl_a=kl_a, tokens=torch.tensor([4, 4]))
    objective(terms, Prices(0.0, 1.0, "sentence", kl_a_free=0.25)).loss.backward()
    assert kl_a.grad.tolist() == [0.0, 0.5]  # only the sentence above δ·T = 1 pays at the margin


def test_authors_tanh_schedule_frozen_at_3000():
    cfg = KLScheduleConfig(schedule="tanh", max_weight=1.0, tanh_centre=4500, tanh_width=1000, freeze_step=3000)
    for step in (0, 1000, 2500, 3000):
        assert kl_weight(step, cfg) == pytest.approx((math.tanh((step - 4500) / 1000) + 1) / 2)
    assert kl_weight(3000, cfg) == pytest.approx(0.0474, abs=1e-4)
    assert kl_weight(4500, cfg) == kl_weight(10**6, cfg) == kl_weight(3000, cfg)  # frozen
    assert settled_kl_weight(cfg) == pytest.approx(0.0474, abs=1e-4)
    unfrozen = KLScheduleConfig(schedule="tanh", max_weight=1.0)
    assert kl_weight(4500, unfrozen) == pytest.approx(0.5) and settled_kl_weight(unfrozen) == pytest.approx(1.0)


def test_freeze_step_holds_any_schedule():
    cfg = KLScheduleConfig(schedule="linear", max_weight=1.0, warmup_steps=100, freeze_step=30)
    assert kl_weight(30, cfg) == kl_weight(90, cfg) == pytest.approx(0.3)
    assert settled_kl_weight(KLScheduleConfig(schedule="cyclical", max_weight=0.8)) == 0.8


def test_constant_schedule():
    cfg = KLScheduleConfig(schedule="constant", max_weight=0.7, warmup_steps=10)
    assert [kl_weight(s, cfg) for s in (0, 5, 10, 999)] == [0.7] * 4


def test_linear_schedule():
    cfg = KLScheduleConfig(schedule="linear", max_weight=0.8, warmup_steps=100)
    assert kl_weight(0, cfg) == 0.0
    assert kl_weight(25, cfg) == pytest.approx(0.2)
    assert kl_weight(50, cfg) == pytest.approx(0.4)
    assert kl_weight(100, cfg) == pytest.approx(0.8)  # max at the end of the warm-up
    assert kl_weight(101, cfg) == pytest.approx(0.8)
    assert kl_weight(10_000, cfg) == pytest.approx(0.8)
    weights = [kl_weight(s, cfg) for s in range(0, 120)]
    assert weights == sorted(weights)


def test_sigmoid_schedule():
    cfg = KLScheduleConfig(schedule="sigmoid", max_weight=2.0, warmup_steps=100)
    assert kl_weight(50, cfg) == pytest.approx(1.0)  # ½·max at half the warm-up
    assert kl_weight(0, cfg) == pytest.approx(2.0 / (1 + math.exp(5)))
    assert kl_weight(0, cfg) < 0.01 * 2.0
    assert kl_weight(100, cfg) > 0.99 * 2.0
    assert kl_weight(10_000, cfg) == pytest.approx(2.0)
    weights = [kl_weight(s, cfg) for s in range(0, 200)]
    assert weights == sorted(weights) and len(set(weights)) > 100


def test_cyclical_schedule_restarts_every_period():
    cfg = KLScheduleConfig(schedule="cyclical", max_weight=1.0, warmup_steps=5000, cycle_steps=100, ratio=0.5)
    # periods of 100 steps: rise over the first 50, then hold the maximum
    expected = {0: 0.0, 25: 0.5, 50: 1.0, 75: 1.0, 99: 1.0,
                100: 0.0, 125: 0.5, 150: 1.0, 199: 1.0,
                200: 0.0, 300: 0.0, 310: 0.2, 350: 1.0, 399: 1.0, 10_000: 0.0}
    for step, weight in expected.items():
        assert kl_weight(step, cfg) == pytest.approx(weight), step
    restarts = [s for s in range(1, 400) if kl_weight(s, cfg) < kl_weight(s - 1, cfg)]
    assert restarts == [100, 200, 300]


def test_cyclical_schedule_ratio_one_rises_over_the_whole_period():
    cfg = KLScheduleConfig(schedule="cyclical", max_weight=3.0, cycle_steps=10, ratio=1.0)
    assert [kl_weight(s, cfg) for s in (0, 5, 9, 10, 15, 20)] == pytest.approx([0.0, 1.5, 2.7, 0.0, 1.5, 0.0])
    weights = [kl_weight(s, cfg) for s in range(100)]
    assert all(0.0 <= w < 3.0 for w in weights)


def test_schedules_depend_on_the_step_alone():
    for schedule in ("constant", "linear", "sigmoid", "cyclical"):
        cfg = KLScheduleConfig(schedule=schedule, max_weight=0.9, warmup_steps=40, cycle_steps=30, ratio=0.25)
        first = [kl_weight(s, cfg) for s in range(200)]
        assert first == [kl_weight(s, cfg) for s in range(200)]
        assert all(0.0 <= w <= 0.9 + 1e-12 for w in first), schedule


def test_gumbel_temperature_constant_without_annealing():
    assert {gumbel_temperature(s, 1.3, 0.5, 0.0) for s in (0, 10, 10**6)} == {1.3}


def test_gumbel_temperature_decays_to_its_floor():
    tau0, tau_min, rate = 2.0, 0.5, 0.01
    assert gumbel_temperature(0, tau0, tau_min, rate) == pytest.approx(tau0)
    assert gumbel_temperature(50, tau0, tau_min, rate) == pytest.approx(tau0 * math.exp(-0.5))
    taus = [gumbel_temperature(s, tau0, tau_min, rate) for s in range(0, 400, 10)]
    assert taus == sorted(taus, reverse=True) and taus[0] > taus[5]
    floor_step = math.ceil(math.log(tau0 / tau_min) / rate)  # ≈ 139
    assert gumbel_temperature(floor_step - 5, tau0, tau_min, rate) > tau_min
    assert gumbel_temperature(floor_step, tau0, tau_min, rate) == tau_min
    assert gumbel_temperature(10**7, tau0, tau_min, rate) == tau_min


def test_last_step_pricing_takes_each_sentences_last_kl_a_alone():
    terms = Terms(rec=torch.tensor([6.0, 2.0]), kl_z=torch.tensor([4.0, 2.0]), kl_a=torch.tensor([9.0, 3.0]),
                  tokens=torch.tensor([3, 2]), kl_a_last=torch.tensor([5.0, 1.0]))
    every = per_sentence(terms, Prices(kl_z=0.5, kl_a=0.1, unit="sentence"))
    last = per_sentence(terms, Prices(kl_z=0.5, kl_a=0.1, unit="sentence", kl_a_steps="last"))
    assert torch.allclose(every, torch.tensor([6 + 2 + 0.9, 2 + 1 + 0.3]))
    assert torch.allclose(last, torch.tensor([6 + 2 + 0.5, 2 + 1 + 0.1]))
    token = per_sentence(terms, Prices(kl_z=0.5, kl_a=0.1, unit="token", kl_a_steps="last"))
    assert torch.allclose(token, torch.tensor([6 / 3 + 2 + 0.5 / 3, 2 / 2 + 1 + 0.1 / 2]))
    cfg = dataclasses.replace(TrainConfig(), pricing=PricingConfig(kl_a_steps="last"))
    assert prices(0, cfg, VariantConfig(attention="gaussian")).kl_a_steps == "last"


def test_the_model_reports_the_kl_of_each_sentences_last_real_step():
    from vae.batching import collate
    from vae.config import ModelConfig
    from vae.model import build_model

    torch.manual_seed(0)
    model = build_model(20, 20, ModelConfig(embedding_dim=8, hidden_size=8, z_dim=4, dropout=0.0),
                        VariantConfig(attention="gaussian"))
    batch = collate([torch.tensor([5, 6, 7]), torch.tensor([8, 9])], [torch.tensor([5, 6, 7, 8]), torch.tensor([9])])
    terms = model(batch, sample=False)
    alone = [model(collate([s], [t]), sample=False).kl_a_last for s, t in
             ((torch.tensor([5, 6, 7]), torch.tensor([5, 6, 7, 8])), (torch.tensor([8, 9]), torch.tensor([9])))]
    assert torch.allclose(terms.kl_a_last, torch.cat(alone), atol=1e-5)
    assert (terms.kl_a_last < terms.kl_a).all()  # one step of several
