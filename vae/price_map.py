"""The price map (studies/params.yaml, study `price_map`): where a latent attention's VAE puts the
source's information, z or a, as λ (the price of a nat of KL_z) and γ_a (of a nat of Σ_j KL(a_j)) change.

Each point is a study point (vae.studies.record) trained with both prices constant from step 0 and the
true NLL as reconstruction, so that a nat costs λ through z, γ_a through a and 1 in the reconstruction.
The reference at each λ is `deterministic` trained at that λ; the claim is judged at each point by
vae.claim's rules against that reference.
"""

from __future__ import annotations

from pathlib import Path

from vae.claim import keeps_z, translates
from vae.config import ClaimConfig
from vae.studies import evidence


def share_through_z(row: dict, rule: ClaimConfig) -> float | None:
    """ΔNLL(z=0) / (ΔNLL(z=0) + ΔNLL(a→prior)), each floored at 0: the share of the decoder's reliance on
    its latents that goes through z (1: all through z); None where the two together cost less than
    z_in_use (neither latent is used: no share to speak of)."""
    dz, da = row.get("dnll_z0"), row.get("dnll_a_prior")
    if dz is None or da is None:
        return None
    dz, da = max(dz, 0.0), max(da, 0.0)
    return dz / (dz + da) if dz + da >= rule.z_in_use else None


def claim_holds(row: dict, reference: dict | None, rule: ClaimConfig) -> bool | None:
    """(ii) and (iii) together at one point, against the reference at the same λ; None without one."""
    if reference is None:
        return None
    point, ref = evidence(row), evidence(reference)
    return keeps_z(point, ref, rule) and translates(point, ref)


def map_markdown(rows: list[dict], rule: ClaimConfig) -> list[str]:
    """One row per point of the map, sorted by variant, λ and γ_a."""
    if not rows:
        return ["No point of the price map has been run yet."]
    refs = {r["kl_z_weight"]: r for r in rows if r["attention"] == "deterministic"}
    header = ["variant", "λ (KL_z)", "γ_a (KL_a)", "KL_z/token", "KL_a/token", "ΔNLL z=0", "ΔNLL a→prior",
              "share via z", "test BLEU", "dev BLEU", "claim holds", "train min"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def fmt(v, d=3):
        return "–" if v is None else f"{v:.{d}f}"

    for r in sorted(rows, key=lambda r: (r["variant"], r["kl_z_weight"], r["gamma_a"])):
        latent_a = r["attention"] in ("gaussian", "gumbel")
        holds = claim_holds(r, refs.get(r["kl_z_weight"]), rule) if latent_a else None
        lines.append("| " + " | ".join([
            f"`{r['variant']}`", f"{r['kl_z_weight']:g}", f"{r['gamma_a']:g}" if latent_a else "–",
            fmt(r["kl_z_per_token"]), fmt(r["kl_a_per_token"]), fmt(r["dnll_z0"]), fmt(r["dnll_a_prior"]),
            fmt(share_through_z(r, rule), 2), f"{r['test_bleu']:.2f} ± {fmt(r['test_bleu_ci95'], 2)}",
            fmt(r["dev_bleu"], 2), "–" if holds is None else ("yes" if holds else "no"),
            f"{r['train_minutes']:.1f}"]) + " |")
    budgets = sorted({(r["train_pairs"], r["epochs"], r["test_sentences"]) for r in rows})
    lines += ["", "Budget: " + "; ".join(f"{p:,} training pairs, {e} epochs, BLEU on the first {t:,} test pairs"
                                         for p, e, t in budgets) + ". 'claim holds': (ii) and (iii) by the rules "
              "of params.yaml `claim`, against `deterministic` at the same λ."]
    return lines


def plot_map(rows: list[dict], rule: ClaimConfig, path: Path) -> None:
    """Per latent attention, the share of reliance through z over the (λ, γ_a) grid, each cell with its
    test BLEU; * marks the cells where the claim holds."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vae.io import atomic_path

    refs = {r["kl_z_weight"]: r for r in rows if r["attention"] == "deterministic"}
    variants = sorted({r["variant"] for r in rows if r["attention"] in ("gaussian", "gumbel")})
    fig, axes = plt.subplots(1, max(len(variants), 1), figsize=(6 * max(len(variants), 1), 4.5), squeeze=False)
    for ax, variant in zip(axes[0], variants):
        cells = {(r["kl_z_weight"], r["gamma_a"]): r for r in rows if r["variant"] == variant}
        zs, gs = sorted({z for z, _ in cells}), sorted({g for _, g in cells})
        share = [[share_through_z(cells[(z, g)], rule) if (z, g) in cells else None for z in zs] for g in gs]
        image = ax.imshow([[float("nan") if v is None else v for v in row] for row in share], origin="lower",
                          cmap="coolwarm", vmin=0.0, vmax=1.0, aspect="auto")
        for i, g in enumerate(gs):
            for j, z in enumerate(zs):
                if (z, g) in cells:
                    r = cells[(z, g)]
                    mark = "*" if claim_holds(r, refs.get(z), rule) else ""
                    ax.text(j, i, f"{r['test_bleu']:.1f}{mark}", ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(zs)), [f"{z:g}" for z in zs])
        ax.set_yticks(range(len(gs)), [f"{g:g}" for g in gs])
        ax.set_xlabel("λ: price of a nat of KL_z")
        ax.set_ylabel("γ_a: price of a nat of KL(a)")
        ax.set_title(f"`{variant}`: share of ΔNLL through z (cells: test BLEU, * claim holds)", fontsize=9)
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
