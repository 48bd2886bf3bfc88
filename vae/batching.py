"""Token-bucketed batches: sentences of similar length together, at most `max_tokens` padded
target tokens per batch, in an order fixed by (seed, epoch) so a resumed run sees the same data."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch.nn.utils.rnn import pad_sequence

from vae import UserError
from vae.symbols import BOS, EOS, PAD


def pack(sequences: list[list[int]]) -> dict[str, torch.Tensor]:
    """Ragged id lists as one flat int32 tensor plus offsets: compact and fast to load."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
    offsets = torch.zeros(len(sequences) + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(lengths, 0)
    flat = torch.tensor([i for s in sequences for i in s], dtype=torch.int32)
    return {"ids": flat, "offsets": offsets}


def unpack(packed: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    offsets = packed["offsets"].tolist()
    return [packed["ids"][a:b].long() for a, b in zip(offsets[:-1], offsets[1:])]


@dataclass
class Batch:
    src: torch.Tensor  # (batch, src_len) ids, PAD-padded
    src_lengths: torch.Tensor  # (batch,)
    tgt_in: torch.Tensor  # (batch, tgt_len): <s> y_1 … y_n
    tgt_out: torch.Tensor  # (batch, tgt_len): y_1 … y_n </s>

    def to(self, device) -> "Batch":
        return Batch(*(t.to(device, non_blocking=True) for t in (self.src, self.src_lengths, self.tgt_in, self.tgt_out)))

    @property
    def tgt_mask(self) -> torch.Tensor:
        return self.tgt_out != PAD


@dataclass
class Pairs:
    """One encoded split: source and target id sequences, without special symbols."""

    src: list[torch.Tensor]
    tgt: list[torch.Tensor]

    @classmethod
    def load(cls, path: str | Path, limit: int = 0) -> "Pairs":
        try:
            data = torch.load(path, weights_only=True)
        except FileNotFoundError:
            raise UserError(f"{path}: no such encoded split; run the tokenize stage first") from None
        pairs = cls(unpack(data["src"]), unpack(data["tgt"]))
        return pairs.head(limit) if limit else pairs

    def head(self, n: int) -> "Pairs":
        return Pairs(self.src[:n], self.tgt[:n])

    def __len__(self) -> int:
        return len(self.src)

    def target_tokens(self) -> int:
        return sum(len(t) + 1 for t in self.tgt)  # + </s>


def collate(src: list[torch.Tensor], tgt: list[torch.Tensor]) -> Batch:
    """Source + </s>; target in as <s> y, target out as y </s>; all padded with PAD."""
    eos, bos = torch.tensor([EOS]), torch.tensor([BOS])
    src = [torch.cat([s, eos]) for s in src]
    return Batch(
        src=pad_sequence(src, batch_first=True, padding_value=PAD),
        src_lengths=torch.tensor([len(s) for s in src]),
        tgt_in=pad_sequence([torch.cat([bos, t]) for t in tgt], batch_first=True, padding_value=PAD),
        tgt_out=pad_sequence([torch.cat([t, eos]) for t in tgt], batch_first=True, padding_value=PAD),
    )


def fill(order: list[int], cost: Callable[[int], int], max_tokens: int) -> list[list[int]]:
    """Cut `order` into consecutive batches whose padded size, the largest `cost` in the batch
    times its number of items, stays within `max_tokens` (a single item may exceed it)."""
    batches, current, longest = [], [], 0
    for i in order:
        if current and max(longest, cost(i)) * (len(current) + 1) > max_tokens:
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, cost(i))
    if current:
        batches.append(current)
    return batches


def buckets(pairs: Pairs, max_tokens: int, seed: int | None) -> list[list[int]]:
    """Index lists of batches of at most `max_tokens` padded target tokens (</s> included). With a
    seed: lengths jittered and batch order shuffled; without: sorted by length (for evaluation)."""
    rng = random.Random(seed)
    jitter = (lambda: rng.random()) if seed is not None else (lambda: 0.0)
    order = sorted(range(len(pairs)), key=lambda i: (len(pairs.tgt[i]) + jitter(), len(pairs.src[i])))
    batches = fill(order, lambda i: len(pairs.tgt[i]) + 1, max_tokens)
    if seed is not None:
        rng.shuffle(batches)
    return batches


def iterate(pairs: Pairs, max_tokens: int, seed: int | None = None) -> Iterator[Batch]:
    for indices in buckets(pairs, max_tokens, seed):
        yield collate([pairs.src[i] for i in indices], [pairs.tgt[i] for i in indices])
