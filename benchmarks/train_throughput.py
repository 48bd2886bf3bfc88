"""Training throughput (target tokens/s) of every variant against a minimal reference loop.

The reference is the same architecture as each variant, written plainly in PyTorch with nothing
of ours: one bidirectional nn.LSTM over padded sources (so, unlike ours, padding leaks into the
backward direction), the sentence latent z when the variant has one, one fused decoder LSTM,
bilinear attention over all steps at once (deterministic, Gaussian a with its σ network, or
Gumbel-softmax weights), the output layer over every position, cross-entropy ignoring padding,
the KL terms, the same dropout, Adam and clipping. Both see the same batches in the same order;
the first `--warmup` steps are not timed.

    PYTHONPATH=. python benchmarks/train_throughput.py [--pairs 3000] [--steps 20] [--precision fp32|bf16]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

from vae.batching import Pairs, iterate
from vae.config import VariantConfig, load_params
from vae.model import build_model
from vae.objective import Prices, objective
from vae.symbols import PAD


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
    p.add_argument("--params", default="params.yaml", help="model sizes and batch size from here")
    args = p.parse_args()
    params = load_params(args.params)
    torch.manual_seed(0)
    pairs = Pairs.load("data/encoded/train.pt", args.pairs)
    batches = list(iterate(pairs, params.train.max_tokens, seed=1))[: args.steps + args.warmup]
    vocab = 8000
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.precision}, "
          f"{args.steps} timed steps of ≤{params.train.max_tokens} target tokens")
    for name, variant in params.variants.items():
        reference = ReferenceSeq2Seq(vocab, params.model.embedding_dim, params.model.hidden_size, params.model.z_dim,
                                     params.model.dropout, variant)
        ref_opt = torch.optim.Adam(reference.parameters(), 1e-3)

        def reference_step(batch):
            with autocast:
                loss = reference(batch.src, batch.tgt_in, batch.tgt_out)
            ref_opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(reference.parameters(), params.train.clip_norm)
            ref_opt.step()

        model = build_model(vocab, vocab, params.model, variant)
        opt = torch.optim.Adam(model.parameters(), 1e-3)

        def step(batch):
            with autocast:
                terms = model(batch, sample=True)
            result = objective(terms, Prices(0.05, variant.gamma_a, "sentence"))
            opt.zero_grad()
            result.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), params.train.clip_norm)
            opt.step()

        baseline = timed(reference_step, batches, args.warmup)
        rate = timed(step, batches, args.warmup)
        print(f"{name:14s} reference {baseline:6.0f} tok/s   ours {rate:6.0f} tok/s   ratio {rate / baseline:.2f}")


if __name__ == "__main__":
    main()
