"""Translation quality with sacreBLEU: corpus BLEU and chrF with their signatures, and paired
bootstrap resampling (Koehn, 2004) of every system against a baseline."""

from __future__ import annotations

import json

from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest

# The reference experiment (EuroParl fr→en, 80k train / 10k test); Gumbel was never reported.
REFERENCE_BLEU = {"none": 22.5, "gaussian": 31.2, "gumbel": None}


def corpus_scores(hypotheses: list[str], references: list[str]) -> dict:
    """BLEU and chrF of one system, each with the sacreBLEU signature that makes it reproducible."""
    bleu, chrf = BLEU(), CHRF()
    b, c = bleu.corpus_score(hypotheses, [references]), chrf.corpus_score(hypotheses, [references])
    return {"bleu": round(b.score, 2), "bleu_signature": str(bleu.get_signature()),
            "chrf": round(c.score, 2), "chrf_signature": str(chrf.get_signature())}


def bleu_with_ci(hypotheses: list[str], references: list[str], samples: int) -> dict:
    """Corpus BLEU with sacreBLEU's bootstrap 95% confidence interval (its half-width; None for a
    BLEU of 0), the signature recording the resamples."""
    bleu = BLEU()
    score = bleu.corpus_score(hypotheses, [references], n_bootstrap=samples)
    d = json.loads(score.format(signature=str(bleu.get_signature()), is_json=True))
    return {"bleu": d["score"], "bleu_ci95": d.get("confidence_var"), "bleu_signature": d["signature"]}


def paired_bootstrap(baseline: tuple[str, list[str]], systems: list[tuple[str, list[str]]],
                     references: list[str], samples: int) -> dict[str, dict]:
    """sacreBLEU's paired bootstrap of each system against `baseline` (seed 12345 unless
    SACREBLEU_SEED says otherwise): BLEU mean ± 95% CI and the p-value of the difference."""
    test = PairedTest([baseline, *systems], {"BLEU": BLEU()}, [references], test_type="bs", n_samples=samples)
    signatures, scores = test()
    out = {}
    for name, result in zip(scores["System"], scores["BLEU"]):
        out[name] = {"bleu_mean": round(result.mean, 2), "bleu_ci95": round(result.ci, 2),
                     "p_value": None if result.p_value is None else round(result.p_value, 4)}
    out["signature"] = str(signatures["BLEU"])
    return out
