"""Batched decoding: beam search (greedy is beam size 1), with the latents at their means or sampled.

Each step runs the same `Decoder.forward` as training, one token at a time. A hypothesis ends
at </s> or at its length limit ⌊ratio·|X|⌋ + slack; finished beams only extend with free
padding, so they keep their score. The final choice among the k beams divides the
log-probability by the GNMT length penalty ((5 + |Y|)/6)^α (Wu et al., 2016).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vae.batching import collate, fill
from vae.config import DecodeConfig
from vae.model import Seq2SeqVAE
from vae.symbols import BOS, EOS, PAD


@dataclass(frozen=True)
class SearchSettings:
    beam_size: int = 5
    length_penalty: float = 1.0  # α; 0 ranks by raw log-probability
    max_length_ratio: float = 1.5
    max_length_slack: int = 10
    sample: bool = False  # draw z and a from q(·|X) instead of taking their means
    z_source: str = "posterior"  # or "mean", "zero", "prior": see Seq2SeqVAE.encode
    precision: str = "fp32"  # "bf16": autocast the matrix products; scores are summed in fp32 either way

    @classmethod
    def from_config(cls, cfg: DecodeConfig, **overrides) -> "SearchSettings":
        return cls(**{"beam_size": cfg.beam_size, "length_penalty": cfg.length_penalty,
                      "max_length_ratio": cfg.max_length_ratio, "max_length_slack": cfg.max_length_slack,
                      "precision": cfg.precision, **overrides})


def _repeat(x: torch.Tensor, k: int, dim: int = 0) -> torch.Tensor:
    return x.repeat_interleave(k, dim=dim)


def _best(tokens: torch.Tensor, scores: torch.Tensor, k: int, alpha: float) -> list[list[int]]:
    """The best of each sentence's k finished beams (rows of `tokens`, flat `scores`) by the length
    penalty, as token ids without <s>, </s> and padding."""
    body = tokens[:, 1:]
    lengths = ((body != PAD) & (body != EOS)).sum(1) + 1  # + </s>
    penalty = ((5.0 + lengths.float()) / 6.0) ** alpha
    best = (scores / penalty).view(-1, k).argmax(1) + torch.arange(0, len(body), k, device=body.device)
    return [[t for t in row if t not in (PAD, EOS)] for row in body[best].tolist()]


@torch.no_grad()
def beam_search(model: Seq2SeqVAE, src: torch.Tensor, src_lengths: torch.Tensor,
                settings: SearchSettings, z: torch.Tensor | None = None) -> list[list[int]]:
    """Best hypothesis per source sentence as token ids (without <s>, </s>, padding).
    A given `z` (batch, z_dim) replaces the sentence latent (latent traversals).

    A sentence whose k beams have all finished leaves the batch, so the steps after it cost
    only the sentences still being translated."""
    model.eval()
    batch, k = src.size(0), settings.beam_size
    memory, (h, c), _ = model.encode(src, src_lengths, settings.sample, settings.z_source if z is None else z)
    memory.states, memory.mask = _repeat(memory.states, k), _repeat(memory.mask, k)
    if memory.z is not None:
        memory.z = _repeat(memory.z, k)
    h, c = _repeat(h, k, 1), _repeat(c, k, 1)
    limits = _repeat((src_lengths.to(src.device) * settings.max_length_ratio).long() + settings.max_length_slack, k)

    scores = torch.full((batch, k), float("-inf"), device=src.device)
    scores[:, 0] = 0.0  # all beams start identical: keep one alive
    tokens = torch.full((batch * k, 1), BOS, dtype=torch.long, device=src.device)
    finished = torch.zeros(batch * k, dtype=torch.bool, device=src.device)
    sentences = torch.arange(batch, device=src.device)  # the input sentence of each block of k rows
    ids = torch.arange(model.decoder.out.out_features, device=src.device)
    only_eos = torch.where(ids == EOS, 0.0, float("-inf"))  # a beam at its length limit must stop
    only_pad = torch.where(ids == PAD, 0.0, float("-inf"))  # a finished beam extends for free
    results: list[list[int]] = [[] for _ in range(batch)]
    for step in range(int(limits.max())):
        logits, (h, c), _ = model.decoder(tokens[:, -1:], (h, c), memory, sample=settings.sample)
        log_probs = F.log_softmax(logits[:, 0].float(), dim=-1)  # (rows, vocab)
        log_probs[:, PAD] = float("-inf")
        at_limit = step + 1 >= limits
        log_probs[at_limit & ~finished] = only_eos
        log_probs[finished] = only_pad
        vocab = log_probs.size(1)
        candidates = (scores.view(-1, 1) + log_probs).view(-1, k * vocab)
        scores, flat = candidates.topk(k, dim=1)  # (sentences, k)
        chosen = (torch.arange(0, len(tokens), k, device=src.device)[:, None] + flat // vocab).view(-1)
        tokens = torch.cat([tokens[chosen], (flat % vocab).view(-1, 1)], dim=1)
        h, c = h[:, chosen], c[:, chosen]
        finished = finished[chosen] | (tokens[:, -1] == EOS)
        done = finished.view(-1, k).all(1)
        if bool(done.any()):
            rows = done.repeat_interleave(k)
            for sentence, hypothesis in zip(sentences[done].tolist(),
                                            _best(tokens[rows], scores[done].view(-1), k, settings.length_penalty)):
                results[sentence] = hypothesis
            if bool(done.all()):
                break
            rows, sentences, scores = ~rows, sentences[~done], scores[~done]
            tokens, finished, limits, h, c = tokens[rows], finished[rows], limits[rows], h[:, rows], c[:, rows]
            memory.states, memory.mask = memory.states[rows], memory.mask[rows]
            if memory.z is not None:
                memory.z = memory.z[rows]
    return results


def translate_ids(model: Seq2SeqVAE, sources: list[list[int]], settings: SearchSettings,
                  max_tokens: int = 4000, device: str | torch.device = "cpu") -> list[list[int]]:
    """Decode id sequences in length-sorted batches of at most `max_tokens` source tokens
    (counting every beam); results come back in input order."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    chunks = fill(order, lambda i: (len(sources[i]) + 1) * settings.beam_size, max_tokens)
    results: list[list[int]] = [[] for _ in sources]
    no_target = torch.zeros(0, dtype=torch.long)
    device = torch.device(device)
    for chunk in chunks:
        batch = collate([torch.tensor(sources[i], dtype=torch.long) for i in chunk], [no_target] * len(chunk))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=settings.precision == "bf16"):
            hypotheses = beam_search(model, batch.src.to(device), batch.src_lengths.to(device), settings)
        for i, hyp in zip(chunk, hypotheses):
            results[i] = hyp
    return results
