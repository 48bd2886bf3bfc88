"""The seed's three claims, each judged by one rule (thresholds: params.yaml `claim`, vae.config.ClaimConfig).

Every table that states a verdict — the root RESULTS.md, the seeds, the price curve — calls these
functions, so that a verdict means the same wherever it is printed. The evidence of one model is
what the diagnose stage measures on its test pairs (nats per target token) and its test BLEU:

    (i)   ordinary attention bypasses z:   ΔNLL_det(z=0) < bypass_ratio · ΔNLL_none(z=0)
    (ii)  a latent attention keeps z in use, with a alive:
              ΔNLL(z=0) ≥ max(keeps_z_ratio · ΔNLL_det(z=0), z_in_use)
              and KL_a ≥ a_kl_in_use and ΔNLL(a→prior) ≥ a_read
          (a collapsed a makes the model the no-attention VAE with noise: z is then used, but not
          *beside* a latent attention, which is what the claim is about)
    (iii) a latent attention translates at least as well as ordinary attention:
              BLEU ≥ BLEU_det − CI95_det   (the deterministic's bootstrap half-width; 0 if unknown)

Over several seeds a claim "holds" only if it holds in every seed, "fails" if it holds in none,
and is "mixed" otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from vae.config import ClaimConfig


@dataclass(frozen=True)
class Evidence:
    """What one trained model shows: test BLEU (with its 95% half-width where known), and from the
    diagnose stage ΔNLL(z=0), ΔNLL(a→prior) and KL_a per token (None where the model has no z / no a)."""

    bleu: float
    dnll_z0: float | None = None
    dnll_a_prior: float | None = None
    kl_a: float = 0.0
    bleu_ci95: float | None = None

    @classmethod
    def from_scores(cls, bleu: float, latent: dict, bleu_ci95: float | None = None) -> "Evidence":
        """From a BLEU and a diagnose-stage record (results/diagnose/<name>.json)."""
        def delta(key):
            return latent[key] - latent["nll_per_token"] if key in latent else None
        return cls(bleu, delta("nll_z_zero"), delta("nll_a_prior"), latent.get("kl_a_per_token", 0.0), bleu_ci95)


def bypasses(deterministic: Evidence, none: Evidence, rule: ClaimConfig) -> bool:
    """(i): removing z costs ordinary attention less than bypass_ratio of what it costs the no-attention VAE."""
    return deterministic.dnll_z0 < rule.bypass_ratio * none.dnll_z0


def a_alive(latent: Evidence, rule: ClaimConfig) -> bool:
    """The latent attention's a carries information (KL_a) and the decoder reads it (ΔNLL(a→prior))."""
    return (latent.dnll_a_prior is not None and latent.kl_a >= rule.a_kl_in_use
            and latent.dnll_a_prior >= rule.a_read)


def z_used(latent: Evidence, deterministic: Evidence, rule: ClaimConfig) -> bool:
    """Removing z costs at least keeps_z_ratio × what it costs ordinary attention, and at least z_in_use."""
    return latent.dnll_z0 is not None and \
        latent.dnll_z0 >= max(rule.keeps_z_ratio * deterministic.dnll_z0, rule.z_in_use)


def keeps_z(latent: Evidence, deterministic: Evidence, rule: ClaimConfig) -> bool:
    """(ii): z used beside an a that is alive."""
    return z_used(latent, deterministic, rule) and a_alive(latent, rule)


def translates(latent: Evidence, deterministic: Evidence) -> bool:
    """(iii): BLEU within the deterministic's 95% interval or above."""
    return latent.bleu >= deterministic.bleu - (deterministic.bleu_ci95 or 0.0)


def verdicts(models: dict[str, Evidence], latent_names: list[str], rule: ClaimConfig) -> dict[str, bool]:
    """Every verdict that `models` allow, keyed "(i)", "(ii) <name>", "(iii) <name>" for each name in
    `latent_names` (the models whose a is latent); needs `deterministic` (and `none` for (i))."""
    det = models.get("deterministic")
    if det is None:
        return {}
    out = {}
    if "none" in models:
        out["(i)"] = bypasses(det, models["none"], rule)
    for name in latent_names:
        out[f"(ii) {name}"] = keeps_z(models[name], det, rule)
        out[f"(iii) {name}"] = translates(models[name], det)
    return out


def combine(outcomes: list[bool]) -> str:
    """One verdict over seeds: holds in every seed, fails in every seed, or mixed."""
    if outcomes and all(outcomes):
        return "holds"
    return "fails" if not any(outcomes) else "mixed"


def describe(key: str, models: dict[str, Evidence], rule: ClaimConfig) -> str:
    """The rule of verdict `key` with the numbers it rests on, one line."""
    det = models["deterministic"]
    if key == "(i)":
        return (f"ΔNLL(z=0) {det.dnll_z0:+.3f} with ordinary attention against {models['none'].dnll_z0:+.3f} "
                f"without (rule: < {rule.bypass_ratio:g}×)")
    claim, name = key.split(" ", 1)
    m = models[name]
    if claim == "(ii)":
        a = "–" if m.dnll_a_prior is None else f"{m.dnll_a_prior:+.3f}"
        return (f"ΔNLL(z=0) {m.dnll_z0:+.3f} against {det.dnll_z0:+.3f} for `deterministic` (rule: ≥ "
                f"{rule.keeps_z_ratio:g}× and ≥ {rule.z_in_use:g}); a alive: KL_a {m.kl_a:.3f} (rule ≥ "
                f"{rule.a_kl_in_use:g}), ΔNLL(a→prior) {a} (rule ≥ {rule.a_read:g})")
    ci = "" if det.bleu_ci95 is None else f" ± {det.bleu_ci95:.2f}"
    return f"BLEU {m.bleu:.2f} against {det.bleu:.2f}{ci} for `deterministic` (rule: within the 95% CI or above)"


STATEMENTS = {"(i)": "ordinary attention bypasses z", "(ii)": "keeps z in use beside a live a",
              "(iii)": "translates at least as well as ordinary attention"}


def statement(key: str) -> str:
    """'(ii) `gumbel` keeps z in use beside a live a'."""
    claim, _, name = key.partition(" ")
    return f"{claim} {STATEMENTS[claim]}" if not name else f"{claim} `{name}` {STATEMENTS[claim]}"
