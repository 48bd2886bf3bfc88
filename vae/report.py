"""The markdown results table, generated from the evaluate stage's metrics (never hand-edited)."""

from __future__ import annotations

from vae.claim import Evidence, describe, statement, verdicts
from vae.config import ClaimConfig, Params, PricingConfig, VariantConfig
from vae.metrics import REFERENCE_BLEU


def _fmt(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def price(variant: VariantConfig | None, pricing: PricingConfig) -> str:
    """What the objective charges a variant's attention: γ_a on KL(a) (γ_a·λ(t) where annealed), β on the
    entropy bonus Σ_j KL[α_j ‖ uniform]; '–' where neither applies."""
    if variant is None:
        return "–"
    parts = []
    if variant.attention in ("gaussian", "gumbel"):
        parts.append(f"γ_a{'·λ(t)' if pricing.kl_a_weight == 'annealed' else ''} {variant.gamma_a:g}")
    if variant.attention_kl_price > 0:
        parts.append(f"β {variant.attention_kl_price:g}")
    return ", ".join(parts) or "–"


def results_table(metrics: dict, params: Params) -> str:
    variants = metrics["variants"]
    baselines = [b for b in params.evaluate.baselines if b in metrics["bootstrap"]]
    header = ["variant", "price", "BLEU", "95% CI", "chrF", "reference BLEU"]
    header += [f"p vs {b}" for b in baselines]
    header += ["dev PPL", "KL_z/token", "KL_a/token", "epochs", "train min", "device"]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, score in variants.items():
        train = score["train"]
        first = metrics["bootstrap"][baselines[0]][name] if baselines else {}
        cells = [f"`{name}`", price(params.variants.get(name), params.train.pricing), _fmt(score["bleu"]), f"± {_fmt(first.get('bleu_ci95'))}" if first else "–",
                 _fmt(score["chrf"]), _fmt(REFERENCE_BLEU.get(name), 1) if name in REFERENCE_BLEU else "–"]
        for b in baselines:
            cells.append("baseline" if name == b else _fmt(metrics["bootstrap"][b][name]["p_value"], 4))
        cells += [_fmt(train["dev_ppl"]), _fmt(train["dev_kl_z_per_token"], 3), _fmt(train["dev_kl_a_per_token"], 3),
                  str(train["epochs"]), _fmt(train.get("train_minutes"), 1), train["device"]]
        rows.append("| " + " | ".join(cells) + " |")
    any_train = next(iter(variants.values()))["train"]
    budget = (f"{any_train['train_pairs']:,} training pairs, {any_train['epochs']} epochs, "
              f"{metrics['test_sentences']:,} test sentences, beam {params.decode.beam_size}, "
              f"device {any_train['device']} ({any_train['precision']})")
    signature = next(iter(variants.values()))["bleu_signature"]
    notes = [
        "# Results", "",
        f"Budget: {budget}. The reference column is the paper's (EuroParl fr→en, 80k training / 10k test "
        "pairs), given with no metric or test set, and the authors' repository has no translation experiment: "
        "context, not a target. Our numbers are compared, by sacreBLEU, with our own baselines.", "",
        *rows, "",
        f"BLEU signature: `{signature}`  ",
        f"chrF signature: `{next(iter(variants.values()))['chrf_signature']}`  ",
    ]
    if baselines:
        notes.append(f"Paired bootstrap: `{metrics['bootstrap'][baselines[0]]['signature']}`; "
                     f"95% CI from the resamples against `{baselines[0]}`.")
    if all("latent" in score for score in variants.values()):
        notes += ["", *claim_table(metrics, params.claim), "", *latent_table(variants)]
    else:  # a kept run from before the diagnose stage (results/runs/)
        notes += ["", "No latent diagnostics (this run predates the diagnose stage): no claim is judged."]
    notes += ["", "KL values are on the dev split with z and a at their means; PPL is exp(rec NLL per token) "
              "with z and a at their means, so for the VAEs it is not a bound on the true perplexity.", ""]
    return "\n".join(notes)


def headline(metrics: dict) -> dict[str, dict]:
    """Per variant, the few numbers `dvc metrics show` prints (the rest is in results/metrics.json):
    test BLEU and chrF, dev KL_z and KL_a per token, and the test NLL lost with z = 0 or a at its prior."""
    rows = {}
    for name, score in metrics["variants"].items():
        latent = score.get("latent", {})  # none in a run from before the diagnose stage
        rows[name] = {"bleu": score["bleu"], "chrf": score["chrf"],
                      "kl_z": round(score["train"]["dev_kl_z_per_token"], 4),
                      "kl_a": round(score["train"]["dev_kl_a_per_token"], 4),
                      "dnll_z0": _rounded_delta(latent, "nll_z_zero"), "dnll_a_prior": _rounded_delta(latent, "nll_a_prior")}
    return rows


def _rounded_delta(latent: dict, key: str) -> float | None:
    return round(latent[key] - latent["nll_per_token"], 4) if key in latent else None


def evidence(metrics: dict) -> dict[str, Evidence]:
    """The claim's evidence per variant of an evaluate-stage metrics.json (BLEU half-widths from the
    bootstrap against `deterministic`, where it was a baseline)."""
    boot = metrics["bootstrap"].get("deterministic", {})
    return {name: Evidence.from_scores(score["bleu"], score["latent"], boot.get(name, {}).get("bleu_ci95"))
            for name, score in metrics["variants"].items()}


def latent_attention_names(metrics: dict) -> list[str]:
    """Every variant whose a is latent (the diagnose stage measured ΔNLL(a→prior)), whatever it is called."""
    return [name for name, score in metrics["variants"].items() if "nll_a_prior" in score["latent"]]


def claim_verdicts(metrics: dict, rule: ClaimConfig) -> list[str]:
    """One line per claim of the seed (vae.claim), each with the numbers it rests on and its rule."""
    models = evidence(metrics)
    p_values = metrics["bootstrap"].get("deterministic", {})
    lines = []
    for key, holds in verdicts(models, latent_attention_names(metrics), rule).items():
        line = f"{statement(key)}: **{'holds' if holds else 'does not hold'}** — {describe(key, models, rule)}"
        name = key.partition(" ")[2]
        if key.startswith("(iii)") and name in p_values:
            line += f"; paired bootstrap p = {p_values[name]['p_value']}"
        lines.append(line + ".")
    return lines


def claim_table(metrics: dict, rule: ClaimConfig) -> list[str]:
    """The seed's claims: per variant BLEU ± CI, chrF, KLs, ΔNLL(z=0), ΔNLL(a→prior), active units; then verdicts."""
    variants = metrics["variants"]
    boot = metrics["bootstrap"].get("deterministic") or next(iter(metrics["bootstrap"].values()), {})
    header = ["variant", "BLEU", "95% CI", "chrF", "KL_z/token", "KL_a/token", "ΔNLL z=0", "ΔNLL a→prior",
              "active units"]
    rows = ["## The claim", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, score in variants.items():
        d = score["latent"]

        def delta(key):
            return f"{d[key] - d['nll_per_token']:+.3f}" if key in d else "–"

        ci = boot.get(name, {}).get("bleu_ci95")
        rows.append("| " + " | ".join([f"`{name}`", _fmt(score["bleu"]), f"± {_fmt(ci)}" if ci is not None else "–",
                                       _fmt(score["chrf"]), f"{d['kl_z_per_token']:.3f}", f"{d['kl_a_per_token']:.3f}",
                                       delta("nll_z_zero"), delta("nll_a_prior"),
                                       f"{d['active_units']}/{d['z_dim']}" if d.get("active_units") is not None else "–"]) + " |")
    return rows + ["", *[f"- {line}" for line in claim_verdicts(metrics, rule)]]


def latent_table(variants: dict) -> list[str]:
    """Does z carry information? One row per variant from the diagnose stage."""
    header = ["variant", "NLL/token", "KL_z/token", "KL_a/token", "active units", "I(x;z)", "ΔNLL z=0",
              "ΔNLL z~p(z)", "ΔNLL a→prior", "ΔNLL a sampled", "greedy BLEU", "BLEU z=0", "BLEU z~p(z)", "distinct-2", "self-BLEU"]
    rows = ["## Latent-use evidence", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, score in variants.items():
        d = score["latent"]
        base = d["nll_per_token"]

        def delta(key):
            return f"{d[key] - base:+.3f}" if key in d else "–"

        div = d.get("diversity", {})
        units = f"{d['active_units']}/{d['z_dim']}" if d.get("active_units") is not None else "–"  # None: < 2 sentences
        cells = [f"`{name}`", f"{base:.3f}", f"{d['kl_z_per_token']:.3f}", f"{d['kl_a_per_token']:.3f}", units,
                 _fmt(d.get("mutual_information")), delta("nll_z_zero"), delta("nll_z_prior"), delta("nll_a_prior"),
                 delta("nll_a_sampled"),
                 _fmt(d["greedy_bleu"]), _fmt(d.get("greedy_bleu_z_zero")), _fmt(d.get("greedy_bleu_z_prior")),
                 _fmt(div.get("distinct_2")), _fmt(div.get("self_bleu"))]
        rows.append("| " + " | ".join(cells) + " |")
    first = next(iter(variants.values()))["latent"]
    rows += ["", f"On the first {first['sentences']:,} test pairs, z and a at their means unless stated. Active units: "
             "dimensions with Var_x(E_q[z_d|x]) ≥ 0.01. I(x;z): He et al. (2019) estimator. ΔNLL: change in test NLL "
             "per token when the decoder gets z = 0, a prior draw, a at its prior's mean (Gaussian: 0 or h̄; Gumbel: "
             "uniform weights) or a sampled a instead of the means; a latent that carries nothing shows ΔNLL ≈ 0. Diversity: greedy decoding of `diagnose.samples` draws of (z, a) per source; "
             "self-BLEU 100 means every draw is identical."]
    return rows


def traversal_table(source: str, traversals: dict[str, list[dict]], detokenise) -> str:
    """Markdown: per variant, the source decoded with z moved along its most-used dimensions."""
    lines = ["# Latent traversals of z", "",
             f"Source: _{source}_", "",
             "Greedy decoding with z = E_q[z|x] plus c standard deviations (of E_q[z_d|x] across test "
             "sentences) along the three dimensions of largest mean KL. A decoder that ignores z writes the "
             "same sentence in every column.", ""]
    for name, rows in traversals.items():
        offsets = [f"{c:+g}σ" if c else "mean" for c in (rows[0]["offsets"] if rows else [])]
        lines += [f"## `{name}`", "", "| dimension (KL) | " + " | ".join(offsets) + " |",
                  "|" + "---|" * (len(offsets) + 1)]
        for row in rows:
            cells = [_cell(text) for text in detokenise(row["hypotheses"])]
            lines.append(f"| z{row['dim']} ({row['kl']:.2f}) | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|") or "(empty)"


def experiments_table(experiments: dict) -> list[str]:
    """Runs collected from `dvc exp` (stages/collect.py): BLEU mean ± std over seeds per setting."""
    groups = experiments.get("groups", [])
    if not groups:
        return ["No DVC experiments collected yet: queue seeds with `dvc exp run --queue -S train.seed=N`, run "
                "`dvc queue start --jobs N`, then `dvc exp show --json | python -m stages.collect` and "
                "`dvc repro report` (README, \"Seeds and sweeps\")."]
    variants = sorted({v for g in groups for v in g["bleu"]})
    lines = ["| settings | seeds | " + " | ".join(f"`{v}`" for v in variants) + " |", "|" + "---|" * (len(variants) + 2)]
    for g in groups:
        settings = ", ".join(f"{k}={v}" for k, v in g["settings"].items()) or "(as params.yaml)"
        cells = []
        for v in variants:
            b = g["bleu"].get(v)
            cells.append("–" if b is None else f"{b['mean']:.2f}" + (f" ± {b['std']:.2f}" if b["std"] is not None else ""))
        lines.append(f"| {settings} | {', '.join(map(str, g['seeds']))} | " + " | ".join(cells) + " |")
    lines += ["", "BLEU mean ± sample standard deviation over the runs of each setting."]
    return lines


FIGURES = [
    ("attention_maps.png", "Attention on the same test sentences: deterministic weights, the Gaussian a's mean "
                           "context weights, the Gumbel a's categorical probabilities."),
    ("attention_entropy.png", "Entropy of each decoder step's attention distribution."),
    ("z_kl_per_dimension.png", "Mean KL of each dimension of z (sorted): active units stand out."),
    ("z_pca.png", "PCA of the posterior means E_q[z|x] of test sentences, coloured by source length."),
    ("sigma_a_gaussian.png", "Mean σ of each component of the Gaussian a across decoder steps."),
]


def report_markdown(metrics: dict, experiments: dict, figures: set[str], traversal: str, params: Params,
                    studies: list[str]) -> str:
    """results/REPORT.md: the whole result of one `dvc repro` on one page."""
    m, t = params.model, params.train
    lines = ["# Variational attention for seq2seq VAEs: report", "",
             "_Generated by the `report` stage from this run's outputs; never edited by hand._", "",
             "## Configuration", "",
             f"- Corpus: `{params.download.source}` EuroParl {params.download.src_lang}→{params.download.tgt_lang}; "
             f"split {params.prepare.train_size:,}/{params.prepare.dev_size:,}/{params.prepare.test_size:,}; "
             f"SentencePiece {params.tokenize.model_type} {params.tokenize.vocab_size:,}"
             f"{' joint' if params.tokenize.joint else ''}.",
             f"- Model: embeddings {m.embedding_dim}, bi-LSTM {m.hidden_size} per direction, decoder LSTM "
             f"{m.hidden_size}, z {m.z_dim}, dropout {m.dropout}.",
             f"- Training: {t.max_pairs or 'all'} pairs, {t.epochs} epochs, {t.max_tokens} target tokens per batch, "
             f"Adam {t.learning_rate:g}, λ_KL {t.kl.schedule} to {t.kl.max_weight:g} over {t.kl.warmup_steps} steps, "
             f"word dropout {t.word_dropout:g}, {t.precision}, seed {t.seed}.",
             f"- Decoding: beam {params.decode.beam_size}, length penalty {params.decode.length_penalty:g}.", ""]
    table = results_table(metrics, params).split("\n")
    lines += ["## Translation quality and latent use", "", *[f"#{line}" if line.startswith("#") else line
                                                            for line in table[2:]]]
    lines += ["## Figures", ""]
    for name, caption in FIGURES:
        if name in figures:
            lines += [f"![{caption}](figures/{name})", "", f"_{caption}_", ""]
    if traversal:
        lines += ["#" + line if line.startswith("#") else line for line in traversal.split("\n")] + [""]
    lines += ["## The studies", "", "From the studies pipeline (`dvc repro studies/dvc.yaml`; "
              "[results/studies/README.md](studies/README.md)), as committed when this report was written.", "",
              *studies, ""]
    lines += ["## Repeated runs (DVC experiments)", "", *experiments_table(experiments), ""]
    return "\n".join(lines)
