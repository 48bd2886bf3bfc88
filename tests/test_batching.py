"""Token-bucketed batches: size bound, coverage, reproducible order, and collation."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from vae import UserError
from vae.batching import Pairs, buckets, collate, iterate
from vae.batching import pack
from vae.symbols import BOS, EOS, PAD

MAX_TOKENS = 64


def make_pairs(n=200, seed=0, long_one=True) -> Pairs:
    g = torch.Generator().manual_seed(seed)
    src, tgt = [], []
    for _ in range(n):
        src.append(torch.randint(4, 50, (int(torch.randint(1, 25, (1,), generator=g)),), generator=g))
        tgt.append(torch.randint(4, 50, (int(torch.randint(1, 30, (1,), generator=g)),), generator=g))
    if long_one:  # longer than a whole batch may be: it must still be trained on, alone
        src.append(torch.randint(4, 50, (70,), generator=g))
        tgt.append(torch.randint(4, 50, (MAX_TOKENS + 20,), generator=g))
    return Pairs(src, tgt)


def padded_target_tokens(pairs: Pairs, indices) -> int:
    return max(len(pairs.tgt[i]) + 1 for i in indices) * len(indices)


@pytest.mark.parametrize("seed", [None, 0, 7])
def test_batches_respect_max_tokens(seed):
    pairs = make_pairs()
    batches = buckets(pairs, MAX_TOKENS, seed)
    assert len(batches) > 10
    for indices in batches:
        batch = collate([pairs.src[i] for i in indices], [pairs.tgt[i] for i in indices])
        assert batch.tgt_out.numel() == padded_target_tokens(pairs, indices)
        if len(indices) > 1:
            assert batch.tgt_out.numel() <= MAX_TOKENS
        else:
            assert batch.tgt_out.numel() <= MAX_TOKENS or len(pairs.tgt[indices[0]]) + 1 > MAX_TOKENS
    alone = [b for b in batches if len(pairs.tgt[b[0]]) + 1 > MAX_TOKENS]
    assert alone == [[len(pairs) - 1]]  # the over-long sentence gets a batch of its own


@pytest.mark.parametrize("seed", [None, 0, 7])
def test_every_index_once_per_epoch(seed):
    pairs = make_pairs()
    seen = Counter(i for indices in buckets(pairs, MAX_TOKENS, seed) for i in indices)
    assert sorted(seen) == list(range(len(pairs)))
    assert set(seen.values()) == {1}


def test_batches_are_reasonably_full():
    pairs = make_pairs(long_one=False)
    batches = buckets(pairs, MAX_TOKENS, seed=3)
    # Bucketing by length keeps padding low: most of the padded budget holds real tokens.
    real = sum(len(pairs.tgt[i]) + 1 for b in batches for i in b)
    padded = sum(padded_target_tokens(pairs, b) for b in batches)
    assert real / padded > 0.7
    assert padded / len(batches) > MAX_TOKENS / 2


def test_same_seed_same_batches_other_seed_other_order():
    pairs = make_pairs()
    assert buckets(pairs, MAX_TOKENS, 5) == buckets(pairs, MAX_TOKENS, 5)
    assert buckets(pairs, MAX_TOKENS, 5) != buckets(pairs, MAX_TOKENS, 6)
    first = [b[0] for b in buckets(pairs, MAX_TOKENS, 5)]
    second = [b[0] for b in buckets(pairs, MAX_TOKENS, 6)]
    assert first != second
    for seed in (5, 6):  # the batch order is shuffled, not by length
        longest = [max(len(pairs.tgt[i]) for i in b) for b in buckets(pairs, MAX_TOKENS, seed)]
        assert longest != sorted(longest) and longest != sorted(longest, reverse=True)
    batches_a = list(iterate(pairs, MAX_TOKENS, seed=5))
    batches_b = list(iterate(pairs, MAX_TOKENS, seed=5))
    assert all(torch.equal(a.tgt_out, b.tgt_out) and torch.equal(a.src, b.src) for a, b in zip(batches_a, batches_b))


def test_without_seed_batches_go_by_length():
    pairs = make_pairs()
    batches = buckets(pairs, MAX_TOKENS, None)
    assert batches == buckets(pairs, MAX_TOKENS, None)
    lengths = [len(pairs.tgt[i]) for b in batches for i in b]
    assert lengths == sorted(lengths)


def test_collate_adds_the_special_symbols_and_pads():
    src = [torch.tensor([10, 11, 12]), torch.tensor([20])]
    tgt = [torch.tensor([30]), torch.tensor([40, 41, 42, 43])]
    batch = collate(src, tgt)
    assert torch.equal(batch.src, torch.tensor([[10, 11, 12, EOS], [20, EOS, PAD, PAD]]))
    assert torch.equal(batch.src_lengths, torch.tensor([4, 2]))
    assert torch.equal(batch.tgt_in, torch.tensor([[BOS, 30, PAD, PAD, PAD], [BOS, 40, 41, 42, 43]]))
    assert torch.equal(batch.tgt_out, torch.tensor([[30, EOS, PAD, PAD, PAD], [40, 41, 42, 43, EOS]]))
    assert torch.equal(batch.tgt_mask, batch.tgt_out != PAD)
    assert batch.tgt_mask.sum().item() == 2 + 5


def test_collate_on_random_pairs():
    pairs = make_pairs(30, seed=1, long_one=False)
    batch = collate(pairs.src, pairs.tgt)
    for b, (s, t) in enumerate(zip(pairs.src, pairs.tgt)):
        n, m = len(s), len(t)
        assert batch.src_lengths[b] == n + 1
        assert torch.equal(batch.src[b, :n], s) and batch.src[b, n] == EOS and (batch.src[b, n + 1:] == PAD).all()
        assert batch.tgt_in[b, 0] == BOS and torch.equal(batch.tgt_in[b, 1:m + 1], t)
        assert torch.equal(batch.tgt_out[b, :m], t) and batch.tgt_out[b, m] == EOS
        assert (batch.tgt_in[b, m + 1:] == PAD).all() and (batch.tgt_out[b, m + 1:] == PAD).all()
    assert batch.src.dtype == batch.tgt_in.dtype == batch.tgt_out.dtype == torch.int64


def test_pairs_load_head_and_target_tokens(tmp_path):
    pairs = make_pairs(12, long_one=False)
    path = tmp_path / "train.pt"
    torch.save({"src": pack([s.tolist() for s in pairs.src]), "tgt": pack([t.tolist() for t in pairs.tgt])}, path)
    loaded = Pairs.load(path)
    assert len(loaded) == 12
    assert all(torch.equal(a, b) for a, b in zip(loaded.src + loaded.tgt, pairs.src + pairs.tgt))
    assert len(Pairs.load(path, limit=5)) == 5
    assert loaded.target_tokens() == sum(len(t) + 1 for t in pairs.tgt)
    with pytest.raises(UserError, match="no such encoded split"):
        Pairs.load(tmp_path / "missing.pt")
