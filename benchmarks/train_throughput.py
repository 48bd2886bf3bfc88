"""Training throughput (target tokens/s) of every variant: the training loop's own step against a bare reference loop.

"Ours" is `vae.train.Trainer`'s step, all of it: collating the batch, the step's prices, the forward
pass, the objective, backward, clipping, Adam, the weight average and the running totals. The
reference is the same architecture written plainly in PyTorch with nothing of ours: one
bidirectional nn.LSTM over padded sources (so, unlike ours, padding leaks into the backward
direction), the sentence latent z when the variant has one, one fused decoder LSTM, bilinear
attention over all steps at once (deterministic, Gaussian a with its σ network, or Gumbel-softmax
weights), the output layer over every position, cross-entropy ignoring padding, the KL terms, the
same dropout, Adam and clipping; no label smoothing, entropy bonus or weight average. Both see the
same batches; the first `--warmup` are not timed. This machine's speed drifts by tens of percent
within minutes, so the two loops alternate `--rounds` times and the ratio is each round's, the
median given with the range.

Each variant's result goes to `--out` (results/train_throughput.json), keyed by variant: the median
ratio, both loops' tokens/s over all rounds, the CPU, the precision and the number of rounds. A run
replaces the file, so it holds the variants of the last run only.

    PYTHONPATH=. python benchmarks/train_throughput.py [--pairs 3000] [--steps 10] [--rounds 5] [--variants plain ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from time_to_bleu import cpu_name
from vae.batching import Pairs, collate
from vae.config import VariantConfig, load_params
from vae.io import write_json
from vae.symbols import PAD
from vae.train import Trainer, setup_for


class ReferenceSeq2Seq(nn.Module):
    def __init__(self, vocab: int, emb: int, hidden: int, z_dim: int, dropout: float, variant: VariantConfig):
        super().__init__()
        self.kind, self.gamma = variant.attention, variant.gamma_a
        self.z_dim = z_dim if variant.latent_z else 0
        self.dropout = nn.Dropout(dropout)
        self.src_embed, self.tgt_embed = nn.Embedding(vocab, emb), nn.Embedding(vocab, emb)
        self.encoder = nn.LSTM(emb, hidden, batch_first=True, bidirectional=True)
        if self.z_dim:
            self.mu, self.logvar = nn.Linear(2 * hidden, z_dim), nn.Linear(2 * hidden, z_dim)
        self.bridge = nn.Linear(self.z_dim or 2 * hidden, hidden)
        self.decoder = nn.LSTM(emb + self.z_dim, hidden, batch_first=True)
        self.attn = nn.Linear(hidden, 2 * hidden, bias=False)
        if self.kind == "gaussian":
            self.sigma = nn.Sequential(nn.Linear(2 * hidden, 2 * hidden), nn.Tanh(), nn.Linear(2 * hidden, 2 * hidden))
        context = 0 if self.kind == "none" else 2 * hidden
        self.combine = nn.Linear(hidden + context + self.z_dim, hidden)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, src, tgt_in, tgt_out):
        batch, steps = tgt_in.shape
        states, (h, _) = self.encoder(self.dropout(self.src_embed(src)))
        summary = torch.cat([h[0], h[1]], -1)
        kl_z = kl_a = torch.zeros(())
        inputs = self.dropout(self.tgt_embed(tgt_in))
        if self.z_dim:
            mu, logvar = self.mu(summary), self.logvar(summary)
            z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
            kl_z = 0.5 * (logvar.exp() + mu.pow(2) - 1 - logvar).sum(-1).mean()
            summary = z
            inputs = torch.cat([inputs, z[:, None].expand(-1, steps, -1)], -1)
        h0 = torch.tanh(self.bridge(summary))[None]
        dec, _ = self.decoder(inputs, (h0, torch.zeros_like(h0)))
        parts = [dec]
        if self.kind != "none":
            pad = (src == PAD)[:, None]
            scores = torch.bmm(self.attn(dec), states.transpose(1, 2)).float().masked_fill(pad, -1e9)
            log_alpha = F.log_softmax(scores, -1)
            weights = log_alpha.exp()
            if self.kind == "gumbel":
                gumbel = -torch.log(-torch.log(torch.rand_like(log_alpha).clamp(1e-10, 1 - 1e-7)))
                weights = F.softmax(log_alpha + gumbel, -1)
                n = (~pad).sum(-1).float()
                kl_a = ((log_alpha.exp() * log_alpha).masked_fill(pad, 0).sum(-1) + n.log())
            context = torch.bmm(weights.to(states.dtype), states)
            if self.kind == "gaussian":
                mu_a, logvar_a = context.float(), self.sigma(context).float()
                context = (mu_a + (0.5 * logvar_a).exp() * torch.randn_like(mu_a)).to(states.dtype)
                kl_a = 0.5 * (logvar_a.exp() + mu_a.pow(2) - 1 - logvar_a).sum(-1)
            if self.kind in ("gaussian", "gumbel"):
                kl_a = (kl_a * (tgt_out != PAD)).sum() / batch
            parts.append(context)
        if self.z_dim:
            parts.append(z[:, None].expand(-1, steps, -1))
        combined = torch.cat([p.to(dec.dtype) for p in parts], -1)
        logits = self.out(self.dropout(torch.tanh(self.combine(combined))))
        rec = F.cross_entropy(logits.float().flatten(0, 1), tgt_out.flatten(), ignore_index=PAD, reduction="sum") / batch
        return rec + 0.05 * kl_z + self.gamma * kl_a


def timed(step, batches) -> tuple[float, int]:
    """Seconds and target tokens of one pass of `step` over `batches`."""
    tokens, start = 0, time.perf_counter()
    for indices in batches:
        tokens += step(indices)
    return time.perf_counter() - start, tokens


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=3000)
    p.add_argument("--steps", type=int, default=10, help="timed steps per loop and round")
    p.add_argument("--rounds", type=int, default=5, help="reference and ours alternate this many times")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--precision", choices=["fp32", "bf16"], help="default: train.precision")
    p.add_argument("--variants", nargs="*", help="default: every variant in params")
    p.add_argument("--params", default="params.yaml", help="model sizes, batch size and precision from here")
    p.add_argument("--out", default="results/train_throughput.json")
    args = p.parse_args()
    params = load_params(args.params)
    cfg = dataclasses.replace(params.train, device="cpu", max_pairs=args.pairs, max_minutes=0,
                              precision=args.precision or params.train.precision)
    pairs = Pairs.load("data/encoded/train.pt", args.pairs)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cfg.precision}, "
          f"{args.rounds} rounds of {args.steps} steps of ≤{cfg.max_tokens} target tokens per loop")
    results = {}
    for name in args.variants or list(params.variants):
        variant = params.variants[name]
        with tempfile.TemporaryDirectory() as checkpoints:
            setup = setup_for(params.model, variant, cfg, Path("data"), pairs)
            trainer = Trainer(setup, pairs, pairs, Path(checkpoints), name)
        batches = trainer.epoch_batches(0)[: args.warmup + args.steps]
        warmup, batches = batches[: args.warmup], batches[args.warmup:]
        torch.manual_seed(0)
        reference = ReferenceSeq2Seq(setup.src_vocab, params.model.embedding_dim, params.model.hidden_size,
                                     params.model.z_dim, params.model.dropout, variant)
        ref_opt = torch.optim.Adam(reference.parameters(), cfg.learning_rate)

        def reference_step(indices: list[int]) -> int:
            batch = collate([pairs.src[i] for i in indices], [pairs.tgt[i] for i in indices])
            with autocast:
                loss = reference(batch.src, batch.tgt_in, batch.tgt_out)
            ref_opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(reference.parameters(), cfg.clip_norm)
            ref_opt.step()
            return int(batch.tgt_mask.sum())

        totals = defaultdict(float)

        def our_step(indices: list[int]) -> int:  # the training loop's own step: batching, prices, EMA, logging
            trainer._step(indices, totals)
            return sum(len(pairs.tgt[i]) + 1 for i in indices)

        timed(reference_step, warmup), timed(our_step, warmup)
        ratios, ref_time, our_time, ref_tokens, our_tokens = [], 0.0, 0.0, 0, 0
        for _ in range(args.rounds):  # alternating, so the machine's drifting speed falls on both alike
            seconds, tokens = timed(reference_step, batches)
            ref_time, ref_tokens = ref_time + seconds, ref_tokens + tokens
            ours, ours_tokens = timed(our_step, batches)
            our_time, our_tokens = our_time + ours, our_tokens + ours_tokens
            ratios.append((ours_tokens / ours) / (tokens / seconds))
        ratios.sort()
        print(f"{name:14s} reference {ref_tokens / ref_time:6.0f} tok/s   ours {our_tokens / our_time:6.0f} tok/s   "
              f"ratio {statistics.median(ratios):.2f} (rounds {ratios[0]:.2f}–{ratios[-1]:.2f})", flush=True)
        results[name] = {"ratio_to_bare": round(statistics.median(ratios), 3),
                         "tokens_per_s": round(our_tokens / our_time), "bare_tokens_per_s": round(ref_tokens / ref_time),
                         "cpu_model": cpu_name(), "precision": cfg.precision, "rounds": args.rounds}
        write_json(args.out, results)


if __name__ == "__main__":
    main()
