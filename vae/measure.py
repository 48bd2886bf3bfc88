"""The objective's terms summed over a dataset: the one evaluation loop that training (the dev loss
that chooses the checkpoint) and the diagnostics (the test NLL with z or a ablated) share."""

from __future__ import annotations

import torch

from vae.batching import Pairs, buckets, collate
from vae.model import Seq2SeqVAE
from vae.objective import Prices, per_sentence

TERMS = ("rec", "kl_z", "kl_a", "tokens")


def autocast(device: torch.device, precision: str):
    """bf16 autocast for `precision: bf16`, a no-op for fp32."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


@torch.no_grad()
def term_sums(model: Seq2SeqVAE, pairs: Pairs, max_tokens: int, device: torch.device, *, prices: Prices | None = None,
              precision: str = "fp32", shard: tuple[int, int] = (0, 1), sample: bool = False,
              z_source: str = "posterior", a_source: str = "posterior") -> dict[str, float]:
    """Sums over `pairs` of rec, KL_z, KL_a and target tokens, and with `prices` the objective I
    ("loss"); z and a fed as `sample`, `z_source` and `a_source` say (vae.model). `shard` = (rank,
    world) takes every world-th batch from the rank-th, a data-parallel rank's share."""
    model.eval()
    rank, world = shard
    sums = dict.fromkeys((*TERMS, "loss"), 0.0)
    with autocast(device, precision):
        for indices in buckets(pairs, max_tokens, seed=None)[rank::world]:
            batch = collate([pairs.src[i] for i in indices], [pairs.tgt[i] for i in indices]).to(device)
            terms = model(batch, sample=sample, z_source=z_source, a_source=a_source)
            for key in TERMS:
                sums[key] += getattr(terms, key).sum().item()
            if prices is not None:
                sums["loss"] += per_sentence(terms, prices).sum().item()
    return sums
