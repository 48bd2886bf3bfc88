"""Training throughput (target tokens/s) of every variant against a minimal reference loop.

The reference is the same architecture written plainly in PyTorch, with nothing of ours: one
bidirectional nn.LSTM over padded sources (so, unlike ours, padding leaks into the backward
direction), one fused decoder LSTM, bilinear attention over all steps at once, the output layer
over every position, cross-entropy ignoring padding, the same dropout, Adam and clipping. Both see
the same batches in the same order; the first `--warmup` steps are not timed.

    python benchmarks/train_throughput.py [--pairs 3000] [--steps 20] [--precision fp32|bf16]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from vae.batching import Pairs, iterate
from vae.config import load_params
from vae.model import build_model
from vae.objective import objective
from vae.tokenizer import PAD


class ReferenceSeq2Seq(nn.Module):
    def __init__(self, vocab: int, emb: int, hidden: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.src_embed, self.tgt_embed = nn.Embedding(vocab, emb), nn.Embedding(vocab, emb)
        self.encoder = nn.LSTM(emb, hidden, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * hidden, hidden)
        self.decoder = nn.LSTM(emb, hidden, batch_first=True)
        self.attn = nn.Linear(hidden, 2 * hidden, bias=False)
        self.combine = nn.Linear(3 * hidden, hidden)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, src, tgt_in, tgt_out):
        states, (h, _) = self.encoder(self.dropout(self.src_embed(src)))
        h0 = torch.tanh(self.bridge(torch.cat([h[0], h[1]], -1)))[None]
        dec, _ = self.decoder(self.dropout(self.tgt_embed(tgt_in)), (h0, torch.zeros_like(h0)))
        scores = torch.bmm(self.attn(dec), states.transpose(1, 2)).masked_fill((src == PAD)[:, None], -1e9)
        context = torch.bmm(F.softmax(scores.float(), -1).to(states.dtype), states)
        logits = self.out(self.dropout(torch.tanh(self.combine(torch.cat([dec, context], -1)))))
        return F.cross_entropy(logits.float().flatten(0, 1), tgt_out.flatten(), ignore_index=PAD)


def timed(step, batches, warmup: int) -> float:
    tokens, start = 0, None
    for i, batch in enumerate(batches):
        if i == warmup:
            tokens, start = 0, time.perf_counter()
        step(batch)
        tokens += int(batch.tgt_mask.sum())
    return tokens / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=3000)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    args = p.parse_args()
    params = load_params()
    torch.manual_seed(0)
    pairs = Pairs.load("data/encoded/train.pt", args.pairs)
    batches = list(iterate(pairs, params.train.max_tokens, seed=1))[: args.steps + args.warmup]
    vocab = 8000
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")

    reference = ReferenceSeq2Seq(vocab, params.model.embedding_dim, params.model.hidden_size, params.model.dropout)
    ref_opt = torch.optim.Adam(reference.parameters(), 1e-3)

    def reference_step(batch):
        with autocast:
            loss = reference(batch.src, batch.tgt_in, batch.tgt_out)
        ref_opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(reference.parameters(), params.train.clip_norm)
        ref_opt.step()

    baseline = timed(reference_step, batches, args.warmup)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.precision}, "
          f"{args.steps} timed steps of ≤{params.train.max_tokens} target tokens")
    print(f"{'reference loop':16s} {baseline:8.0f} tok/s")
    for name, variant in params.variants.items():
        model = build_model(vocab, vocab, params.model, variant)
        opt = torch.optim.Adam(model.parameters(), 1e-3)

        def step(batch):
            with autocast:
                terms = model(batch, sample=True)
            result = objective(terms, 0.05, variant.gamma_a)
            opt.zero_grad()
            result.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), params.train.clip_norm)
            opt.step()

        rate = timed(step, batches, args.warmup)
        print(f"{name:16s} {rate:8.0f} tok/s  ratio {rate / baseline:.2f}")


if __name__ == "__main__":
    main()
