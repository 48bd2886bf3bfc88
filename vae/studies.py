"""The studies' tables (studies/dvc.yaml, stage `studies`): every point is a model that the main
pipeline's train / decode / diagnose stages made with the point's settings; this module only reads
their files, scores them, and judges the claims by vae.claim's rules.

- the seeds: per variant one value per seed (seed 1 is the root run's model), and each claim's
  verdict over the seeds (holds in every seed / in none / mixed);
- the price curve: the Gaussian a (and the Gumbel a) along γ_a, the price of KL(a), with the root
  run's `deterministic` and `gumbel` as references.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from vae.claim import Evidence, combine, keeps_z, a_alive, statement, verdicts, z_used
from vae.config import ClaimConfig, Params, StudyPoint
from vae.data import read_lines
from vae.metrics import bleu_with_ci, corpus_scores

SEED_VARIANTS = ("plain", "none", "deterministic", "gaussian", "gumbel")


@dataclass(frozen=True)
class Outputs:
    """Where the train / decode / diagnose stages wrote one pipeline's models' files (by name)."""

    train: Path
    decode: Path
    diagnose: Path
    decode_dev: Path | None = None

    def missing(self, name: str) -> list[Path]:
        wanted = [self.train / f"{name}.json", self.decode / f"{name}.txt", self.diagnose / f"{name}.json"]
        return [p for p in wanted if not p.is_file()]


def record(name: str, point: StudyPoint, params: Params, out: Outputs, references: dict[str, list[str]],
           bootstrap_samples: int) -> dict:
    """One model's numbers: its settings, test BLEU ± CI, dev BLEU, the latent evidence and its budget."""
    trained = json.loads((out.train / f"{name}.json").read_text())
    latent = json.loads((out.diagnose / f"{name}.json").read_text())
    decoded = json.loads((out.decode / f"{name}.json").read_text()) if (out.decode / f"{name}.json").is_file() else {}
    hypotheses = read_lines(out.decode / f"{name}.txt")
    test = bleu_with_ci(hypotheses, references["test"][: len(hypotheses)], bootstrap_samples)
    dev_file = out.decode_dev / f"{name}.txt" if out.decode_dev else None
    dev_bleu = None
    if dev_file is not None and dev_file.is_file():
        dev = read_lines(dev_file)
        dev_bleu = corpus_scores(dev, references["dev"][: len(dev)])["bleu"]
    evidence = Evidence.from_scores(test["bleu"], latent, test["bleu_ci95"])
    variant, train = params.variants[point.variant], params.train
    return {"name": name, "study": point.study, "variant": point.variant, "attention": variant.attention,
            "seed": train.seed, "gamma_a": variant.gamma_a, "attention_kl_price": variant.attention_kl_price,
            "kl_z_weight": train.kl.max_weight, "kl_schedule": train.kl.schedule,
            "kl_a_weight": train.pricing.kl_a_weight, "kl_a_steps": train.pricing.kl_a_steps,
            "pricing": "authors" if train.pricing.unit == "token" else "ours",
            **({"tau0": variant.gumbel_tau0, "tau_min": variant.gumbel_tau_min, "tau_anneal_rate": variant.gumbel_anneal_rate}
               if variant.attention == "gumbel" else {}),
            "test_bleu": test["bleu"], "test_bleu_ci95": test["bleu_ci95"], "bleu_signature": test["bleu_signature"],
            "test_sentences": len(hypotheses), "dev_bleu": dev_bleu,
            "kl_z_per_token": latent["kl_z_per_token"], "kl_a_per_token": latent["kl_a_per_token"],
            "dnll_z0": evidence.dnll_z0, "dnll_a_prior": evidence.dnll_a_prior,
            "sigma_mean": latent.get("sigma_a_mean"), "diagnose_sentences": latent["sentences"],
            "dev_ppl": trained.get("dev_ppl"),
            "train_minutes": round(trained["train_minutes"], 2), "epochs": trained["epochs"], "steps": trained["steps"],
            "train_pairs": trained["train_pairs"], "device": trained["device"],
            "device_name": trained.get("device_name"), "precision": trained["precision"],
            "beam": decoded.get("beam_size")}


def evidence(row: dict) -> Evidence:
    return Evidence(row["test_bleu"], row["dnll_z0"], row["dnll_a_prior"], row["kl_a_per_token"], row["test_bleu_ci95"])


# The seeds ------------------------------------------------------------------------------------------

def seeds_table(rows: list[dict]) -> dict:
    """results/seeds.json: {variant: {"seeds": [...], "test_bleu": [...], ...}}, one value per seed, seeds ascending."""
    out = {}
    for variant in SEED_VARIANTS:
        mine = sorted((r for r in rows if r["variant"] == variant), key=lambda r: r["seed"])
        if mine:
            out[variant] = {"seeds": [r["seed"] for r in mine],
                            **{key: [r[key] for r in mine] for key in
                               ("test_bleu", "test_bleu_ci95", "kl_z_per_token", "kl_a_per_token", "dnll_z0",
                                "dnll_a_prior")}}
    return out


def seed_verdicts(seeds: dict, rule: ClaimConfig) -> dict[str, dict]:
    """Each claim's verdict per seed that has every model it needs, and over those seeds."""
    by_seed: dict[int, dict[str, Evidence]] = {}
    for variant, values in seeds.items():
        for i, seed in enumerate(values["seeds"]):
            by_seed.setdefault(seed, {})[variant] = Evidence(
                values["test_bleu"][i], values["dnll_z0"][i], values["dnll_a_prior"][i],
                values["kl_a_per_token"][i], values["test_bleu_ci95"][i])
    outcomes: dict[str, dict[int, bool]] = {}
    for seed, models in sorted(by_seed.items()):
        latent = [v for v in ("gaussian", "gumbel") if v in models]
        for key, holds in verdicts(models, latent, rule).items():
            outcomes.setdefault(key, {})[seed] = holds
    return {key: {"verdict": combine(list(per_seed.values())), "seeds": per_seed} for key, per_seed in outcomes.items()}


def _mean_std(values: list[float | None], decimals: int = 3) -> str:
    """'mean ± sample std (n = k)'; a single value has no spread."""
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    mean = sum(values) / len(values)
    if len(values) == 1:
        return f"{mean:.{decimals}f} (n = 1)"
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{mean:.{decimals}f} ± {std:.{decimals}f} (n = {len(values)})"


def seeds_markdown(seeds: dict, rule: ClaimConfig) -> list[str]:
    """The claim table as mean ± sample standard deviation over seeds, and the verdicts over seeds."""
    if not seeds:
        return ["No seed has been run yet (`dvc repro studies/dvc.yaml:diagnose@seed2-plain`, …)."]
    header = ["variant", "seeds", "test BLEU", "BLEU by seed", "KL_z/token", "KL_a/token", "ΔNLL z=0", "ΔNLL a→prior"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant, v in seeds.items():
        lines.append("| " + " | ".join([f"`{variant}`", ", ".join(map(str, v["seeds"])), _mean_std(v["test_bleu"], 2),
                                        ", ".join(f"{b:.2f}" for b in v["test_bleu"]),
                                        _mean_std(v["kl_z_per_token"]), _mean_std(v["kl_a_per_token"]),
                                        _mean_std(v["dnll_z0"]), _mean_std(v["dnll_a_prior"])]) + " |")
    lines += ["", "Mean ± sample standard deviation over the seeds listed (n = 1: a single seed, no spread).", ""]
    for key, v in seed_verdicts(seeds, rule).items():
        per_seed = ", ".join(f"seed {s}: {'holds' if h else 'fails'}" for s, h in v["seeds"].items())
        lines.append(f"- {statement(key)}: **{v['verdict']}** over {len(v['seeds'])} seed(s) ({per_seed}).")
    return lines


def read_if_present(path: Path) -> dict | None:
    """A studies' file read by a root stage (evaluate, report) without declaring it: a declared dependency
    would make the root `dvc repro` run the studies pipeline. tests/test_committed_results.py keeps the
    root's generated files in step with the committed studies' files instead."""
    return json.loads(path.read_text()) if path.is_file() else None


def seeds_section(seeds: dict | None, rule: ClaimConfig) -> list[str]:
    """The root documents' seeds section: the seeds' table and verdicts, or why there are none."""
    return seeds_markdown(seeds, rule) if seeds is not None else [
        "results/seeds.json is absent: the seeds have not been run (`dvc repro studies/dvc.yaml`)."]


# The entropy bonus ---------------------------------------------------------------------------------

def bonus_markdown(seed_rows: list[dict], bonus_rows: list[dict]) -> list[str]:
    """Ordinary attention with and without the entropy bonus β·Σ_j KL[α_j ‖ uniform]: every seed of the
    variants a `bonus` point changes, beside the point (one change: β), with the dev PPL after training."""
    if not bonus_rows:
        return ["No entropy-bonus point has been run yet."]
    variants = {r["variant"] for r in bonus_rows}
    rows = [r for r in seed_rows if r["variant"] in variants] + bonus_rows
    header = ["model", "seed", "β", "test BLEU", "dev BLEU", "dev PPL", "train min"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in sorted(rows, key=lambda r: (r["variant"], r["seed"], -r["attention_kl_price"])):
        lines.append("| " + " | ".join([f"`{r['name']}`", str(r["seed"]), f"{r['attention_kl_price']:g}",
                                        f"{r['test_bleu']:.2f} ± {r['test_bleu_ci95'] or 0:.2f}",
                                        "–" if r["dev_bleu"] is None else f"{r['dev_bleu']:.2f}",
                                        "–" if r.get("dev_ppl") is None else f"{r['dev_ppl']:.1f}",
                                        f"{r['train_minutes']:.1f}"]) + " |")
    return lines


# The temperature study ------------------------------------------------------------------------------

def tau_label(row: dict) -> str:
    if row["tau_anneal_rate"]:
        return f"annealed {row['tau0']:g} → {row['tau_min']:g} (rate {row['tau_anneal_rate']:g})"
    return f"{row['tau0']:g}"


def tau_markdown(rows: list[dict]) -> list[str]:
    """The Gumbel a at each temperature τ: quality, and what a and z carry."""
    if not rows:
        return ["No τ point has been run yet."]
    header = ["τ", "test BLEU", "dev BLEU", "KL_a/token", "ΔNLL a→prior", "KL_z/token", "ΔNLL z=0", "train min"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in sorted(rows, key=lambda r: (r["tau_anneal_rate"] > 0, r["tau0"])):
        lines.append("| " + " | ".join([tau_label(r), f"{r['test_bleu']:.2f} ± {r['test_bleu_ci95'] or 0:.2f}",
                                        "–" if r["dev_bleu"] is None else f"{r['dev_bleu']:.2f}",
                                        f"{r['kl_a_per_token']:.3f}", fmt_delta(r["dnll_a_prior"]),
                                        f"{r['kl_z_per_token']:.3f}", fmt_delta(r["dnll_z0"]),
                                        f"{r['train_minutes']:.1f}"]) + " |")
    budgets = sorted({(r["train_pairs"], r["epochs"], r["test_sentences"]) for r in rows})
    lines += ["", "Budget: " + "; ".join(f"{p:,} training pairs, {e} epochs, BLEU on the first {t:,} test pairs"
                                         for p, e, t in budgets) + ", otherwise the root run's settings."]
    return lines


# The price curve -----------------------------------------------------------------------------------

CURVE_KEYS = ("variant", "gamma_a", "kl_a_weight", "kl_a_steps", "pricing", "test_bleu", "test_bleu_ci95",
              "dev_bleu", "kl_a_per_token", "kl_z_per_token", "dnll_a_prior", "dnll_z0", "sigma_mean", "train_minutes")


def curve_label(row: dict) -> str:
    """What distinguishes a curve: the entropy bonus, the weight's coupling to λ(t), the steps priced, the pricing."""
    parts = [f"β {row['attention_kl_price']:g}" if row["attention_kl_price"] else "no bonus"]
    if row["kl_a_weight"] == "annealed":
        parts.append("γ_a·λ(t)")
    if row["kl_a_steps"] == "last":
        parts.append("last step")
    if row["pricing"] == "authors":
        parts.append("authors' pricing")
    return f"{row['variant']}, " + ", ".join(parts)


def curve_verdicts(row: dict, deterministic: dict, rule: ClaimConfig) -> dict[str, bool]:
    """At one point: translates (≥ bleu_share × deterministic's BLEU), a alive, z used, and (ii)."""
    point, det = evidence(row), evidence(deterministic)
    return {"translates": row["test_bleu"] >= rule.bleu_share * deterministic["test_bleu"],
            "a_alive": a_alive(point, rule), "z_used": z_used(point, det, rule), "keeps_z": keeps_z(point, det, rule)}


def curve_markdown(curve: dict, rule: ClaimConfig) -> list[str]:
    """The price curve as a table and the paragraph that answers the issue's question with its numbers."""
    det = curve["references"].get("deterministic")
    points = curve["points"]
    if not points or det is None:
        return ["No point of the price curve has been run yet."]
    header = ["curve", "γ_a", "test BLEU", "dev BLEU", "KL_a/token", "ΔNLL a→prior", "σ of a", "KL_z/token",
              "ΔNLL z=0", "≥ 0.95×det", "a alive", "z used", "train min"]
    header[9] = f"≥ {rule.bleu_share:g}×det"
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def fmt(v, d=3):
        return "–" if v is None else f"{v:.{d}f}"

    for row in sorted(points, key=lambda r: (curve_label(r), -r["gamma_a"])):
        v = curve_verdicts(row, det, rule)
        lines.append("| " + " | ".join([curve_label(row), f"{row['gamma_a']:g}",
                                        f"{row['test_bleu']:.2f} ± {fmt(row['test_bleu_ci95'], 2)}",
                                        fmt(row["dev_bleu"], 2), fmt(row["kl_a_per_token"]), fmt(row["dnll_a_prior"]),
                                        fmt(row["sigma_mean"]), fmt(row["kl_z_per_token"]), fmt(row["dnll_z0"]),
                                        *("yes" if v[k] else "no" for k in ("translates", "a_alive", "z_used")),
                                        f"{row['train_minutes']:.1f}"]) + " |")
    refs = ", ".join(f"`{name}` {r['test_bleu']:.2f} BLEU, ΔNLL(z=0) {r['dnll_z0']:+.3f}"
                     for name, r in curve["references"].items())
    lines += ["", f"References (the root run): {refs}. a alive: KL_a ≥ {rule.a_kl_in_use:g} and ΔNLL(a→prior) ≥ "
              f"{rule.a_read:g}; z used: ΔNLL(z=0) ≥ {rule.keeps_z_ratio:g}× `deterministic`'s and ≥ {rule.z_in_use:g} "
              "(nats per target token, diagnose's test pairs).", "", *curve_answer(curve, rule)]
    return lines


def curve_answer(curve: dict, rule: ClaimConfig) -> list[str]:
    """The answers in words: the Gaussian a's, then the Gumbel a's (when its points exist)."""
    return [gaussian_answer(curve, rule), *gumbel_answer(curve, rule)]


def gaussian_answer(curve: dict, rule: ClaimConfig) -> str:
    """The answer in words: a price γ_a > 0 at which the Gaussian a translates (chosen on dev BLEU where the
    points have it), and whether a is read and z used there. γ_a = 0 is reported apart: there KL(a) is not
    in the objective, so a is no longer a priced latent but attention's context (σ of a → 0)."""
    det = curve["references"]["deterministic"]
    gaussian = [r for r in curve["points"] if r["variant"] == "gaussian"]
    if not gaussian:
        return "No Gaussian point has been run yet."
    priced = [r for r in gaussian if r["gamma_a"] > 0]
    target = rule.bleu_share * det["test_bleu"]

    def on_dev(r):
        return (r["dev_bleu"] is not None, r["dev_bleu"] or r["test_bleu"], r["gamma_a"])

    def there(r):
        v = curve_verdicts(r, det, rule)
        return (f"a is {'read' if v['a_alive'] else 'not read'} (KL_a {r['kl_a_per_token']:.3f}, ΔNLL(a→prior) "
                f"{fmt_delta(r['dnll_a_prior'])}) and z is {'used' if v['z_used'] else 'not used'} (ΔNLL(z=0) "
                f"{fmt_delta(r['dnll_z0'])} against `deterministic`'s {fmt_delta(det['dnll_z0'])})")

    if not priced:
        answer = "No Gaussian point with γ_a > 0 has been run yet."
    else:
        judged = [(r, curve_verdicts(r, det, rule)) for r in priced]
        # The setting is chosen on dev BLEU among every priced point, and only then judged on test.
        chosen, verdict = max(judged, key=lambda rv: on_dev(rv[0]))
        dev = "–" if chosen["dev_bleu"] is None else f"{chosen['dev_bleu']:.2f}"
        reach = sum(v["translates"] for _, v in judged)
        if verdict["translates"]:
            keeps = verdict["keeps_z"]
            answer = (f"**The Gaussian a translates at {price(chosen)}** ({curve_label(chosen)}, the priced point with "
                      f"the best dev BLEU, {dev}): {chosen['test_bleu']:.2f} test BLEU ≥ {rule.bleu_share:g} × "
                      f"`deterministic`'s {det['test_bleu']:.2f} = {target:.2f}. There {there(chosen)}: the paper's "
                      f"claim (ii) {'holds' if keeps else 'does not hold'} at that price. {reach} of {len(priced)} priced "
                      "Gaussian points reach the line on test.")
        else:
            answer = (f"**The Gaussian a does not translate at the price chosen on dev**: the priced point with the "
                      f"best dev BLEU ({dev}), {curve_label(chosen)} at {price(chosen)}, reaches {chosen['test_bleu']:.2f} "
                      f"test BLEU, below {rule.bleu_share:g} × `deterministic`'s {det['test_bleu']:.2f} = {target:.2f}; "
                      f"there {there(chosen)}. {reach} of {len(priced)} priced Gaussian points reach the line on test.")
        keepers = [r for r, v in judged if v["keeps_z"]]
        if keepers:
            best = max(keepers, key=lambda r: r["test_bleu"])
            answer += (f" (ii) holds at {len(keepers)} priced point(s); the best of them on test, {curve_label(best)} at "
                       f"{price(best)}, translates at {best['test_bleu']:.2f} BLEU, "
                       f"{'at or above' if best['test_bleu'] >= target else 'below'} the line.")
        else:
            answer += " (ii) holds at no priced point."
    free = [r for r in gaussian if r["gamma_a"] == 0 and curve_verdicts(r, det, rule)["translates"]]
    if free:
        r = max(free, key=on_dev)
        sigma = "–" if r.get("sigma_mean") is None else f"{r['sigma_mean']:.3f}"
        answer += (f" At γ_a = 0 ({curve_label(r)}), where KL(a) is not in the objective and a is attention's context "
                   f"rather than a priced latent (mean σ of a {sigma}), it reaches {r['test_bleu']:.2f}; there {there(r)}.")
    return answer


def gumbel_answer(curve: dict, rule: ClaimConfig) -> list[str]:
    """Does any price γ_a give z back to the Gumbel a's model, with a still alive ((ii) at that point)?
    The root run's `gumbel` (its γ_a from params.yaml) is one point of that curve."""
    det = curve["references"]["deterministic"]
    rows = [r for r in curve["points"] if r["variant"] == "gumbel"]
    if not rows:
        return []
    root = curve["references"].get("gumbel")
    rows = sorted(rows + ([root] if root and root.get("gamma_a") is not None else []), key=lambda r: r["gamma_a"])

    def at(r):
        v = curve_verdicts(r, det, rule)
        return (f"γ_a = {r['gamma_a']:g}{' (the root run)' if r is root else ''}: {r['test_bleu']:.2f} BLEU, a "
                f"{'alive' if v['a_alive'] else 'not alive'} (KL_a {r['kl_a_per_token']:.3f}, ΔNLL(a→prior) "
                f"{fmt_delta(r['dnll_a_prior'])}), z {'used' if v['z_used'] else 'not used'} (ΔNLL(z=0) "
                f"{fmt_delta(r['dnll_z0'])})")

    both = [r for r in rows if curve_verdicts(r, det, rule)["keeps_z"]]
    prices = ", ".join(f"{r['gamma_a']:g}" for r in both)
    head = (f"**The Gumbel a keeps z in use at γ_a = {prices}**"
            if both else "**No price γ_a gives z back to the Gumbel a's model while a stays alive**")
    return ["", head + ": " + "; ".join(at(r) for r in rows) + "."]


def price(row: dict) -> str:
    """γ_a as trained: with the weight annealed, γ_a·λ(t) ends at γ_a times λ's maximum."""
    text = f"γ_a = {row['gamma_a']:g}"
    if row.get("kl_a_weight") == "annealed" and row.get("kl_z_weight") is not None:
        text += f" (γ_a·λ(t), {row['gamma_a'] * row['kl_z_weight']:g} at the end)"
    return text


def fmt_delta(value: float | None) -> str:
    return "–" if value is None else f"{value:+.3f}"


def plot_curve(curve: dict, path: Path) -> None:
    """BLEU, ΔNLL(a→prior) and ΔNLL(z=0) against γ_a on a log axis (γ_a = 0 drawn at the left edge), one line
    per curve, the root run's `deterministic` and `gumbel` as horizontal references."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vae.io import atomic_path

    points = curve["points"]
    positive = [r["gamma_a"] for r in points if r["gamma_a"] > 0] or [1e-3]
    zero_at = min(positive) / 10  # where γ_a = 0 is drawn
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    panels = (("test_bleu", "test BLEU (beam search, test split)"), ("dnll_a_prior", "ΔNLL(a → prior), nats/token"),
              ("dnll_z0", "ΔNLL(z = 0), nats/token"))
    for label in sorted({curve_label(r) for r in points}):
        rows = sorted((r for r in points if curve_label(r) == label), key=lambda r: r["gamma_a"])
        xs = [r["gamma_a"] or zero_at for r in rows]
        for ax, (key, _) in zip(axes, panels):
            ax.plot(xs, [r[key] if r[key] is not None else float("nan") for r in rows], marker="o", label=label)
    for name, style in (("deterministic", "k--"), ("gumbel", "g:")):
        ref = curve["references"].get(name)
        if ref:
            for ax, (key, _) in zip(axes, panels):
                if ref.get(key) is not None:
                    ax.axhline(ref[key], color=style[0], linestyle=style[1:], linewidth=1, label=f"root `{name}`")
    for ax, (_, title) in zip(axes, panels):
        ax.set_xscale("log")
        ax.set_xlabel(f"γ_a, the price of a nat of KL(a) (γ_a = 0 drawn at {zero_at:g})")
        ax.set_title(title, fontsize=10)
    axes[0].legend(fontsize=7)
    fig.suptitle("The price curve: what the latent attention's price buys (root budget)", fontsize=11)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def curve_table(rows: list[dict], references: dict[str, dict]) -> dict:
    """results/price_curve.json: the curve's points (the issue's keys first, then the rest) and the references."""
    def ordered(row):
        return {k: row[k] for k in CURVE_KEYS} | {k: v for k, v in row.items() if k not in CURVE_KEYS}
    return {"points": [ordered(r) for r in rows], "references": {k: ordered(v) for k, v in references.items()}}
