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
    notes += ["", "KL values are on the dev split with z and a at their means; PPL is exp(rec NLL per token) "
              "with z and a at their means, so for the VAEs it is not a bound on the true perplexity.", ""]
    return "\n".join(notes)
