"""The claim table's verdicts and the headline metrics follow their stated rules."""

from __future__ import annotations

from vae.config import ClaimConfig
from vae.report import claim_table, claim_verdicts, headline

RULE = ClaimConfig()


def variant(bleu, nll, z0=None, a_prior=None, kl_z=0.1, kl_a=0.0):
    latent = {"nll_per_token": nll, "kl_z_per_token": kl_z, "kl_a_per_token": kl_a, "sentences": 100}
    if z0 is not None:
        latent |= {"nll_z_zero": nll + z0, "active_units": 30, "z_dim": 32}
    if a_prior is not None:
        latent["nll_a_prior"] = nll + a_prior
    return {"bleu": bleu, "chrf": 40.0, "latent": latent,
            "train": {"dev_kl_z_per_token": kl_z, "dev_kl_a_per_token": kl_a}}


def metrics(gaussian_z0: float, gaussian_bleu: float, gaussian_kl_a: float) -> dict:
    variants = {"none": variant(10.0, 4.0, z0=0.40), "deterministic": variant(20.0, 3.0, z0=0.02),
                "gaussian": variant(gaussian_bleu, 3.1, z0=gaussian_z0, a_prior=0.5, kl_a=gaussian_kl_a)}
    boot = {name: {"bleu_mean": v["bleu"], "bleu_ci95": 0.4, "p_value": 0.01} for name, v in variants.items()}
    return {"variants": variants, "bootstrap": {"deterministic": boot}}


def test_the_seed_claims_hold_when_the_numbers_say_so():
    lines = claim_verdicts(rule=RULE, metrics=metrics(gaussian_z0=0.05, gaussian_bleu=19.7, gaussian_kl_a=0.3))
    assert lines[0].startswith("(i) ordinary attention bypasses z: **holds**")
    assert lines[1].startswith("(ii) `gaussian` keeps z in use beside a live a: **holds**")
    assert lines[2].startswith("(iii) `gaussian` translates at least as well as ordinary attention: **holds**")


def test_the_seed_claims_fail_when_the_numbers_say_so():
    lines = claim_verdicts(rule=RULE, metrics=metrics(gaussian_z0=0.03, gaussian_bleu=19.5, gaussian_kl_a=0.02))
    assert "**does not hold**" in lines[1] and "KL_a 0.020 (rule ≥ 0.1)" in lines[1]  # 0.03 < 2 × 0.02; KL_a < 0.1
    assert "**does not hold**" in lines[2]  # 19.5 < 20.0 − 0.4
    table = "\n".join(claim_table(metrics(0.03, 19.5, 0.02), RULE))
    assert "| `gaussian` | 19.50 | ± 0.40 | 40.00 | 0.100 | 0.020 | +0.030 | +0.500 | 30/32 |" in table


def test_headline_keeps_a_few_numbers_per_variant():
    rows = headline(metrics(0.05, 19.7, 0.3))
    assert rows["gaussian"] == {"bleu": 19.7, "chrf": 40.0, "kl_z": 0.1, "kl_a": 0.3, "dnll_z0": 0.05,
                                "dnll_a_prior": 0.5}
    assert rows["deterministic"]["dnll_a_prior"] is None


def test_every_latent_attention_variant_gets_verdicts_whatever_its_name():
    m = metrics(gaussian_z0=0.05, gaussian_bleu=19.7, gaussian_kl_a=0.3)
    m["variants"]["gaussian_free_bits"] = variant(21.0, 3.0, z0=0.01, a_prior=0.2, kl_a=0.5)
    m["bootstrap"]["deterministic"]["gaussian_free_bits"] = {"bleu_mean": 21.0, "bleu_ci95": 0.4, "p_value": 0.02}
    lines = claim_verdicts(m, RULE)
    assert any(line.startswith("(ii) `gaussian_free_bits` keeps z in use beside a live a: **does not hold**") for line in lines)
    assert any(line.startswith("(iii) `gaussian_free_bits` translates at least as well") and "**holds**" in line
               for line in lines)
    assert not any("`deterministic` keeps z" in line for line in lines)  # no latent a, no (ii)/(iii)


def test_a_z_that_carries_nothing_measurable_is_not_kept_in_use():
    # ordinary attention's z costs nothing (−0.001): "twice that" would let any positive crumb pass
    m = metrics(gaussian_z0=0.005, gaussian_bleu=19.7, gaussian_kl_a=0.3)
    m["variants"]["deterministic"] = variant(20.0, 3.0, z0=-0.001)
    assert "keeps z in use beside a live a: **does not hold**" in claim_verdicts(m, RULE)[1]
    m["variants"]["gaussian"] = variant(19.7, 3.1, z0=0.05, a_prior=0.5, kl_a=0.3)
    assert "keeps z in use beside a live a: **holds**" in claim_verdicts(m, RULE)[1]


def test_a_collapsed_a_never_makes_claim_ii_hold():
    # the root run's Gaussian: z used (+0.376 against +0.003) only because its a collapsed onto the prior
    m = metrics(gaussian_z0=0.376, gaussian_bleu=3.7, gaussian_kl_a=0.015)
    m["variants"]["deterministic"] = variant(23.45, 2.5, z0=0.003)
    line = claim_verdicts(m, RULE)[1]
    assert line.startswith("(ii) `gaussian` keeps z in use beside a live a: **does not hold**")
    # a read but with little information, or much information that the decoder ignores: still not alive
    m["variants"]["gaussian"] = variant(3.7, 3.7, z0=0.376, a_prior=0.01, kl_a=5.0)
    assert "**does not hold**" in claim_verdicts(m, RULE)[1]


def test_the_thresholds_come_from_params():
    m = metrics(gaussian_z0=0.05, gaussian_bleu=19.7, gaussian_kl_a=0.3)
    assert "**holds**" in claim_verdicts(m, RULE)[1]
    assert "**does not hold**" in claim_verdicts(m, ClaimConfig(a_kl_in_use=0.5))[1]
    assert "(i) ordinary attention bypasses z: **does not hold**" in claim_verdicts(m, ClaimConfig(bypass_ratio=0.01))[0]


def test_each_variant_is_labelled_with_the_price_of_its_attention():
    from vae.config import PricingConfig, VariantConfig
    from vae.report import price
    constant, annealed = PricingConfig(), PricingConfig(kl_a_weight="annealed")
    assert price(VariantConfig(attention="gaussian", gamma_a=0.05), constant) == "γ_a 0.05"
    assert price(VariantConfig(attention="gaussian", gamma_a=5e-6, attention_kl_price=0.05), constant) == "γ_a 5e-06, β 0.05"
    assert price(VariantConfig(attention="gumbel", gamma_a=0.5), annealed) == "γ_a·λ(t) 0.5"
    assert price(VariantConfig(attention="deterministic", attention_kl_price=0.05), annealed) == "β 0.05"
    assert price(VariantConfig(attention="none"), constant) == price(None, constant) == "–"
