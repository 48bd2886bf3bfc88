"""vae.claim: one rule per verdict, and verdicts over seeds."""

from vae.claim import Evidence, a_alive, bypasses, combine, keeps_z, translates, verdicts
from vae.config import ClaimConfig

RULE = ClaimConfig()
DET = Evidence(bleu=23.45, dnll_z0=0.003, bleu_ci95=0.36)
NONE = Evidence(bleu=5.05, dnll_z0=0.529)


def test_each_rule_at_its_edge():
    assert bypasses(DET, NONE, RULE) and not bypasses(Evidence(20, dnll_z0=0.2), NONE, RULE)
    alive = Evidence(20.0, dnll_z0=0.01, dnll_a_prior=0.05, kl_a=0.1)
    assert a_alive(alive, RULE) and keeps_z(alive, DET, RULE)
    assert not keeps_z(Evidence(20.0, dnll_z0=0.0099, dnll_a_prior=0.05, kl_a=0.1), DET, RULE)  # z_in_use
    assert not keeps_z(Evidence(20.0, dnll_z0=0.01, dnll_a_prior=0.0499, kl_a=0.1), DET, RULE)  # a not read
    assert not keeps_z(Evidence(20.0, dnll_z0=0.01, dnll_a_prior=0.05, kl_a=0.099), DET, RULE)  # a collapsed
    assert not keeps_z(Evidence(20.0, dnll_z0=0.03, dnll_a_prior=0.05, kl_a=0.1),
                       Evidence(23.0, dnll_z0=0.016), RULE)  # below 2× the deterministic's
    assert translates(Evidence(23.09), DET) and not translates(Evidence(23.08), DET)


def test_verdicts_cover_every_latent_model_and_need_the_deterministic():
    models = {"deterministic": DET, "none": NONE, "g": Evidence(20.12, 0.005, 0.983, 2.797, 0.33)}
    assert verdicts(models, ["g"], RULE) == {"(i)": True, "(ii) g": False, "(iii) g": False}
    assert verdicts({"none": NONE}, [], RULE) == {}


def test_over_seeds_a_verdict_holds_only_in_every_seed():
    assert combine([True, True, True]) == "holds"
    assert combine([False, False]) == "fails"
    assert combine([True, False, True]) == "mixed"
    assert combine([]) == "fails"
