"""Does a trained model read its source through attention? Two measurements on the first dev pairs.

- Attention entropy (nats) of each target step's weights, teacher-forced with z and a at their means,
  against the entropy of uniform weights over the same source (log of its length): near-uniform weights
  average the encoder states instead of choosing among them.
- Source use: the dev NLL per target token with each sentence's source replaced by the next sentence's
  (the decoder then reads a wrong source) minus the NLL with its own source. A model that ignores its
  source, an unconditional language model, scores about 0.

Written for `plain` seed 2 (results/studies/README.md), whose dev PPL after two epochs is five times
that of seeds 1 and 3: the check says whether its attention stayed near uniform. Models come from the
studies pipeline (studies/models/<point>.pt) or the main one (models/<variant>.pt); the results are merged
into --out, keyed by model name.

    PYTHONPATH=. python benchmarks/attention_use.py studies/models/seed2-plain.pt studies/models/seed3-plain.pt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from vae.batching import Pairs
from vae.checkpoint import load_model
from vae.diagnostics import attention_entropy, nll_per_token, teacher_forced_attention
from vae.io import write_json


def attention_use(model, pairs: Pairs, device: torch.device) -> dict:
    weights, _, tgt_mask = teacher_forced_attention(model, pairs, device)
    uniform = torch.tensor([float(len(s) + 1) for s in pairs.src]).log()  # + </s>
    uniform = uniform[:, None].expand_as(tgt_mask)[tgt_mask]
    entropy = attention_entropy(weights, tgt_mask)
    own = nll_per_token(model, pairs, 4000, device)["nll"]
    wrong = nll_per_token(model, Pairs(pairs.src[1:] + pairs.src[:1], pairs.tgt), 4000, device)["nll"]
    return {"dev_pairs": len(pairs), "attention_entropy": float(entropy.mean()),
            "uniform_entropy": float(uniform.mean()), "max_weight": float(weights.max(-1).values[tgt_mask].mean()),
            "nll_per_token": own, "dnll_wrong_source": wrong - own}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("--dev", type=Path, default=Path("data/encoded/dev.pt"))
    p.add_argument("--pairs", type=int, default=500)
    p.add_argument("--out", type=Path, default=Path("results/studies/attention_use.json"))
    args = p.parse_args()
    device = torch.device("cpu")
    pairs = Pairs.load(args.dev, args.pairs)
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for path in args.models:
        model, _ = load_model(path, device)
        results[path.stem] = attention_use(model, pairs, device)
        print(path.stem, {k: round(v, 3) for k, v in results[path.stem].items()})
    write_json(args.out, dict(sorted(results.items())))


if __name__ == "__main__":
    main()
