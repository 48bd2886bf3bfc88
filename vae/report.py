"""The markdown results table, generated from the evaluate stage's metrics (never hand-edited)."""

from __future__ import annotations

from vae.config import Params
from vae.metrics import REFERENCE_BLEU


def _fmt(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def results_table(metrics: dict, params: Params) -> str:
    variants = metrics["variants"]
    baselines = [b for b in params.evaluate.baselines if b in metrics["bootstrap"]]
    header = ["variant", "BLEU", "95% CI", "chrF", "reference BLEU"]
    header += [f"p vs {b}" for b in baselines]
    header += ["dev PPL", "KL_z/token", "KL_a/token", "epochs", "s/epoch", "device"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, score in variants.items():
        train = score["train"]
        first = metrics["bootstrap"][baselines[0]][name] if baselines else {}
        cells = [f"`{name}`", _fmt(score["bleu"]), f"± {_fmt(first.get('bleu_ci95'))}" if first else "–",
                 _fmt(score["chrf"]), _fmt(REFERENCE_BLEU.get(name), 1) if name in REFERENCE_BLEU else "–"]
        for b in baselines:
            cells.append("baseline" if name == b else _fmt(metrics["bootstrap"][b][name]["p_value"], 4))
        cells += [_fmt(train["dev_ppl"]), _fmt(train["dev_kl_z_per_token"], 3), _fmt(train["dev_kl_a_per_token"], 3),
                  str(train["epochs"]), f"{train['mean_epoch_seconds']:.0f}", train["device"]]
        rows.append("| " + " | ".join(cells) + " |")
    any_train = next(iter(variants.values()))["train"]
    budget = (f"{any_train['train_pairs']:,} training pairs, {any_train['epochs']} epochs, "
              f"{metrics['test_sentences']:,} test sentences, beam {params.decode.beam_size}, "
              f"device {any_train['device']} ({any_train['precision']})")
    signature = next(iter(variants.values()))["bleu_signature"]
    notes = [
        "# Results", "",
        f"Budget: {budget}. The reference figures come from the original experiment "
        "(EuroParl fr→en, 80k training / 10k test pairs); compare like with like only at that scale.", "",
        *rows, "",
        f"BLEU signature: `{signature}`  ",
        f"chrF signature: `{next(iter(variants.values()))['chrf_signature']}`  ",
    ]
    if baselines:
        notes.append(f"Paired bootstrap: `{metrics['bootstrap'][baselines[0]]['signature']}`; "
                     f"95% CI from the resamples against `{baselines[0]}`.")
    notes += ["", *latent_table(variants)]
    notes += ["", "KL values are on the dev split with z and a at their means; PPL is exp(rec NLL per token) "
              "with z and a at their means, so for the VAEs it is not a bound on the true perplexity.", ""]
    return "\n".join(notes)


def latent_table(variants: dict) -> list[str]:
    """Does z carry information? One row per variant from the diagnose stage."""
    header = ["variant", "NLL/token", "KL_z/token", "KL_a/token", "active units", "I(x;z)", "ΔNLL z=0",
              "ΔNLL z~p(z)", "ΔNLL a sampled", "greedy BLEU", "BLEU z=0", "BLEU z~p(z)", "distinct-2", "self-BLEU"]
    rows = ["## Latent-use evidence", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, score in variants.items():
        d = score["latent"]
        base = d["nll_per_token"]

        def delta(key):
            return f"{d[key] - base:+.3f}" if key in d else "–"

        div = d.get("diversity", {})
        units = f"{d['active_units']}/{d['z_dim']}" if "active_units" in d else "–"
        cells = [f"`{name}`", f"{base:.3f}", f"{d['kl_z_per_token']:.3f}", f"{d['kl_a_per_token']:.3f}", units,
                 _fmt(d.get("mutual_information")), delta("nll_z_zero"), delta("nll_z_prior"), delta("nll_a_sampled"),
                 _fmt(d["greedy_bleu"]), _fmt(d.get("greedy_bleu_z_zero")), _fmt(d.get("greedy_bleu_z_prior")),
                 _fmt(div.get("distinct_2")), _fmt(div.get("self_bleu"))]
        rows.append("| " + " | ".join(cells) + " |")
    first = next(iter(variants.values()))["latent"]
    rows += ["", f"On the first {first['sentences']:,} test pairs, z and a at their means unless stated. Active units: "
             "dimensions with Var_x(E_q[z_d|x]) ≥ 0.01. I(x;z): He et al. (2019) estimator. ΔNLL: change in test NLL "
             "per token when the decoder gets z = 0, a prior draw, or a sampled a instead of the means; a z that "
             "carries nothing shows ΔNLL ≈ 0. Diversity: greedy decoding of `diagnose.samples` draws of (z, a) per source; "
             "self-BLEU 100 means every draw is identical."]
    return rows
