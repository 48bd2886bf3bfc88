"""The price map: where a VAE with a latent attention puts the source's information as KL_z and
KL(a) get dearer — its grid's points, and reading them (the table, the heat maps).

Each point (trained by vae.price_point) prices a nat of KL_z at λ and a nat of Σ_j KL(a_j) at γ
against a reconstruction priced 1 per nat, so the two axes compare: λ = γ means a nat through z
costs what a nat through a costs. A reference variant without a latent attention
(`deterministic`) is mapped over λ alone. At each point: KL_z and KL_a per target token, how much
the decoder relies on each latent (ΔNLL when z = 0, when a is at its prior's mean), active units,
BLEU with its bootstrap CI, and the dev NLL.

Where the seed and the authors sit on these axes (docs/pricing.md): this project's default is
λ = γ = 0.05; the authors' code divides the reconstruction by the target length T, which in this
unit prices KL_z at λ·T ≈ 0.047 × 24 ≈ 1.1 and KL(a) at 0.1 × 0.047 ≈ 0.005.
"""

from __future__ import annotations


from pathlib import Path

from vae.config import Params
from vae.report import A_IN_USE, KEEPS_Z_RATIO, Z_IN_USE


def point_name(variant: str, kl_z: float, kl_a: float | None) -> str:
    """A point's name, as dvc.yaml spells its file: gumbel-z0.05-a0.25, gumbel-z1.0-a1.0; the
    reference has no a: deterministic-z0.05."""
    return f"{variant}-z{float(kl_z)}" + ("" if kl_a is None else f"-a{float(kl_a)}")


def grid_names(budget) -> list[str]:
    """Every point of the grid in params.yaml's `price_map`, by name."""
    names = [point_name(v, z, a) for v in budget.variants for z in budget.kl_z_prices for a in budget.kl_a_prices]
    return names + [point_name(budget.reference, z, None) for z in budget.kl_z_prices]


def current(points: list[dict], budget) -> list[dict]:
    """The points of the current grid: a point file left from an earlier grid is not part of the map."""
    names = set(grid_names(budget))
    return [p for p in points if p["name"] in names]




def share_through_z(point: dict) -> float | None:
    """ΔNLL(z=0) / (ΔNLL(z=0) + ΔNLL(a→prior)), each floored at 0: the share of the decoder's
    reliance on its latents that goes through z (1: all through z, 0: all through a); None where
    the two together cost less than Z_IN_USE."""
    dz, da = point.get("delta_nll_z_zero"), point.get("delta_nll_a_prior")
    if dz is None or da is None:
        return None
    dz, da = max(dz, 0.0), max(da, 0.0)
    return dz / (dz + da) if dz + da >= Z_IN_USE else None  # below it, neither latent is used: no share to speak of


def both_in_use(point: dict, reference: dict | None) -> bool:
    """The seed's claim at one point, by the claim table's rules (vae.report): z used at least
    KEEPS_Z_RATIO× as much as by the reference at the same λ, and at least Z_IN_USE (twice nothing
    is nothing: where λ has already priced the reference's z out), a not collapsed (KL_a ≥
    A_IN_USE), and BLEU within the reference's CI or above."""
    if reference is None or point.get("diverged_at_step") is not None or point.get("delta_nll_z_zero") is None:
        return False
    keeps_z = point["delta_nll_z_zero"] >= max(KEEPS_Z_RATIO * reference["delta_nll_z_zero"], Z_IN_USE)
    translates = point["bleu"] >= reference["bleu"] - (reference.get("bleu_ci95") or 0.0)
    return keeps_z and point["kl_a_per_token"] >= A_IN_USE and translates


def references_by_price(points: list[dict], reference: str) -> dict[float, dict]:
    return {p["kl_z_price"]: p for p in points if p["variant"] == reference and p.get("diverged_at_step") is None}


def _fmt(value, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(points: list[dict], params: Params) -> str:
    """The map as a table, one row per point, and the points where the seed's claim holds."""
    budget = params.price_map
    refs = references_by_price(points, budget.reference)
    header = ["variant", "λ (KL_z)", "γ (KL_a)", "KL_z/token", "KL_a/token", "ΔNLL z=0", "ΔNLL a→prior",
              "share via z", "active units", "BLEU", "95% CI", "dev NLL/token", "claim holds"]
    steps = sorted(p["steps"] for p in points if p.get("diverged_at_step") is None)
    minutes = max((p.get("max_minutes") or 0.0 for p in points), default=0.0)
    stop = f" or {minutes:g} training minutes, whichever came first" if minutes else ""
    trained = f" ({steps[0]:,}–{steps[-1]:,} updates)" if steps else ""
    beams = sorted({p["beam_size"] for p in points if "beam_size" in p})
    lines = ["# The price map", "",
             f"Budget per point: {budget.max_pairs or 'all'} training pairs, {budget.epochs} epoch(s){stop}{trained}; "
             f"the first {budget.test_sentences} test pairs, beam {'/'.join(map(str, beams)) or '?'}. Prices are nats of objective per nat of "
             "KL, the reconstruction the true NLL summed per sentence (vae/price_point.py). 'claim holds': z used at least "
             f"{KEEPS_Z_RATIO:g}× as much as `{budget.reference}` at the same λ and ΔNLL(z=0) ≥ {Z_IN_USE}, KL_a ≥ {A_IN_USE}, BLEU within "
             f"`{budget.reference}`'s CI or above.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for p in sorted(points, key=lambda p: (p["variant"], p["kl_z_price"], p["kl_a_price"] or 0.0)):
        if p.get("diverged_at_step") is not None:
            lines.append(f"| `{p['variant']}` | {p['kl_z_price']:g} | {_fmt(p['kl_a_price'], 3)} | diverged at step "
                         f"{p['diverged_at_step']} |" + " |" * (len(header) - 4))
            continue
        units = f"{p['active_units']}/{p['z_dim']}" if "active_units" in p else "–"
        reference = refs.get(p["kl_z_price"])
        holds = "–" if p["kl_a_price"] is None or reference is None else ("yes" if both_in_use(p, reference) else "no")
        lines.append("| " + " | ".join([
            f"`{p['variant']}`", f"{p['kl_z_price']:g}", "–" if p["kl_a_price"] is None else f"{p['kl_a_price']:g}",
            _fmt(p["kl_z_per_token"], 3), _fmt(p["kl_a_per_token"], 3), _fmt(p["delta_nll_z_zero"], 3),
            _fmt(p["delta_nll_a_prior"], 3), _fmt(share_through_z(p), 2), units, _fmt(p["bleu"], 2),
            _fmt(p.get("bleu_ci95"), 2), _fmt(p["dev_nll_per_token"], 3), holds]) + " |")
    signature = next((p["bleu_signature"] for p in points if "bleu_signature" in p), None)
    if signature:
        lines += ["", f"BLEU signature: `{signature}`"]
    absent = [name for name in grid_names(budget) if name not in {p["name"] for p in points}]
    if absent:
        lines += ["", f"Not yet run ({len(absent)}): " + ", ".join(f"`{n}`" for n in absent)]
    return "\n".join(lines) + "\n"


def heat_maps(points: list[dict], params: Params, out: Path) -> list[Path]:
    """One figure per mapped variant: the share of reliance through z, BLEU (minus the reference's
    at the same λ), and the total KL per token, over the (λ, γ) grid."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budget = params.price_map
    refs = references_by_price(points, budget.reference)
    zs, as_ = list(budget.kl_z_prices), list(budget.kl_a_prices)
    paths = []
    for variant in budget.variants:
        cells = {(p["kl_z_price"], p["kl_a_price"]): p for p in points
                 if p["variant"] == variant and p.get("diverged_at_step") is None}
        if not cells:
            continue

        def grid(value):
            return [[value(cells[(z, a)], z) if (z, a) in cells else None for z in zs] for a in as_]

        panels = [("share of ΔNLL through z", grid(lambda p, z: share_through_z(p)), "coolwarm", (0.0, 1.0)),
                  (f"BLEU − `{budget.reference}` BLEU",
                   grid(lambda p, z: p["bleu"] - refs[z]["bleu"] if z in refs else None), "RdYlGn", None),
                  ("KL_z + KL_a per token", grid(lambda p, z: p["kl_z_per_token"] + p["kl_a_per_token"]), "viridis", None)]
        fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
        for ax, (title, values, cmap, limits) in zip(axes, panels):
            numbers = [[float("nan") if v is None else v for v in row] for row in values]
            if limits is None:
                finite = [v for row in values for v in row if v is not None]
                bound = max((abs(v) for v in finite), default=1.0) or 1.0
                limits = (-bound, bound) if cmap == "RdYlGn" else (min(finite, default=0.0), max(finite, default=1.0))
            image = ax.imshow(numbers, origin="lower", cmap=cmap, vmin=limits[0], vmax=limits[1], aspect="auto")
            for i, row in enumerate(values):
                for j, v in enumerate(row):
                    mark = "*" if (zs[j], as_[i]) in cells and both_in_use(cells[(zs[j], as_[i])], refs.get(zs[j])) else ""
                    ax.text(j, i, "–" if v is None else f"{v:.2f}{mark}", ha="center", va="center", fontsize=8)
            ax.set_xticks(range(len(zs)), [f"{z:g}" for z in zs])
            ax.set_yticks(range(len(as_)), [f"{a:g}" for a in as_])
            ax.set_xlabel("λ: price of a nat of KL_z")
            ax.set_ylabel("γ: price of a nat of KL(a)")
            ax.set_title(title, fontsize=10)
            fig.colorbar(image, ax=ax, shrink=0.8)
        fig.suptitle(f"`{variant}`: where the information goes (* the seed's claim holds at that point)", fontsize=11)
        fig.tight_layout()
        path = out / f"{variant}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths
