"""Pictures of the latents: attention maps, per-dimension KL of z, a PCA of E_q[z|x], the spread
of the Gaussian a, and the entropy of the Gumbel attention (Bahuleyan et al., 2018, §5)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from vae.io import atomic_path  # noqa: E402
from vae.model.latent import kl_per_dimension as mean_kl_per_dimension  # noqa: E402


def attention_maps(maps: dict[str, torch.Tensor], src_pieces: list[list[str]], tgt_pieces: list[list[str]], path) -> None:
    """One row per sentence, one column per variant: target subwords down, source subwords across."""
    names = list(maps)
    rows = len(src_pieces)
    fig, axes = plt.subplots(rows, len(names), figsize=(4.2 * len(names), 3.8 * rows), squeeze=False)
    for r in range(rows):
        s, t = len(src_pieces[r]), len(tgt_pieces[r])
        for c, name in enumerate(names):
            ax = axes[r][c]
            ax.imshow(maps[name][r, :t, :s].numpy(), cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
            ax.set_xticks(range(s), src_pieces[r], rotation=90, fontsize=6)
            ax.set_yticks(range(t), tgt_pieces[r], fontsize=6)
            if r == 0:
                ax.set_title(name)
    fig.tight_layout()
    _save(fig, path)


def _save(fig, path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _panels(count: int, width: float = 4.0, height: float = 3.2):
    fig, axes = plt.subplots(1, count, figsize=(width * count, height), squeeze=False, layout="constrained")
    return fig, axes[0]


def kl_per_dimension(posteriors: dict[str, tuple[torch.Tensor, torch.Tensor]], path) -> None:
    """Mean KL[q(z_d|x) || N(0,1)] of each dimension, sorted, one panel per variant:
    active units stand out, a collapsed z is flat at zero."""
    fig, axes = _panels(len(posteriors))
    for ax, (name, (mu, logvar)) in zip(axes, posteriors.items()):
        values, _ = mean_kl_per_dimension(mu, logvar).sort(descending=True)
        ax.bar(range(len(values)), values.numpy())
        ax.set_title(name)
        ax.set_xlabel("dimension of z (sorted)")
    axes[0].set_ylabel("KL (nats)")
    _save(fig, path)


def posterior_pca(means: dict[str, torch.Tensor], lengths: torch.Tensor, path) -> None:
    """The first two principal components of E_q[z|x] over test sentences, coloured by length."""
    fig, axes = _panels(len(means))
    for ax, (name, mu) in zip(axes, means.items()):
        centred = mu - mu.mean(0)
        _, _, v = torch.linalg.svd(centred, full_matrices=False)
        projected = centred @ v[:2].T
        points = ax.scatter(projected[:, 0], projected[:, 1], c=lengths.numpy(), s=4, cmap="viridis")
        ax.set_title(name)
        ax.set_xlabel("PC 1")
    axes[0].set_ylabel("PC 2")
    fig.colorbar(points, ax=axes.tolist(), label="source length (subwords)")
    _save(fig, path)


def entropy_histogram(entropies: dict[str, torch.Tensor], path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, values in entropies.items():
        ax.hist(values.numpy(), bins=40, alpha=0.5, label=f"{name} (mean {values.mean():.2f})")
    ax.set_xlabel("attention entropy per decoder step (nats)")
    ax.legend()
    fig.tight_layout()
    _save(fig, path)


def sigma_per_component(logvar: torch.Tensor, tgt_mask: torch.Tensor, path) -> None:
    """Mean σ of each component of the Gaussian a over all real decoder steps, sorted."""
    sigma = (0.5 * logvar[tgt_mask]).exp().mean(0)
    values, _ = sigma.sort()
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(values.numpy())
    ax.axhline(1.0, color="grey", linestyle=":", label="prior σ = 1")
    ax.set_xlabel("component of a (sorted)")
    ax.set_ylabel("mean σ")
    ax.legend()
    fig.tight_layout()
    _save(fig, path)
