"""Data-parallel scaling: training throughput of 1 vs N torchrun ranks on the same global batches.

Each configuration runs `vae.train.train` for one epoch over the first `--pairs` training pairs
(default model sizes from params.yaml, dev set of 200 pairs) and reports the loop's own
measurement of target tokens/s (training only, not the dev pass). Scaling efficiency is
throughput(N ranks) / (N × throughput(1 rank)) at the same threads per rank.

    PYTHONPATH=. python benchmarks/ddp_scaling.py [--pairs 2000] [--ranks 1 2] [--threads-per-rank 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch


def worker(pairs: int, out: Path, params_file: str) -> None:
    from vae import distributed
    from vae.batching import Pairs
    from vae.config import load_params
    from vae.tokenizer import Tokenizers
    from vae.train import Setup, train

    params = load_params(params_file)
    cfg = dataclasses.replace(params.train, epochs=1, max_pairs=pairs, device="cpu", precision="fp32")
    train_pairs = Pairs.load("data/encoded/train.pt", pairs)
    tokenizers = Tokenizers.load("data/tokenizer")
    setup = Setup(params.model, params.variants["deterministic"], cfg, tokenizers.src.get_piece_size(),
                  tokenizers.tgt.get_piece_size(), len(train_pairs))
    _, run = train(setup, train_pairs, Pairs.load("data/encoded/dev.pt", 200), out / "checkpoints")
    if distributed.is_main_process():
        (out / "history.json").write_text(json.dumps(run.history))


def measure(ranks: int, threads: int, pairs: int, params_file: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": "."}
        command = [sys.executable, __file__, "--worker", tmp, "--pairs", str(pairs), "--params", params_file]
        if ranks > 1:
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
                       *command[1:]]
        subprocess.run(command, env=env, check=True, capture_output=True)
        return json.loads((Path(tmp) / "history.json").read_text())[0]["tokens_per_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=2000)
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--threads-per-rank", type=int, default=1)
    p.add_argument("--params", default="params.yaml", help="model sizes and batch size from here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.pairs, Path(args.worker), args.params)
        return
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {args.pairs} pairs, 1 epoch, `deterministic` variant")
    single = measure(1, args.threads_per_rank, args.pairs, args.params)
    print(f"1 rank × {args.threads_per_rank} thread(s): {single:8.0f} tok/s")
    for n in args.ranks:
        if n == 1:
            continue
        rate = measure(n, args.threads_per_rank, args.pairs, args.params)
        print(f"{n} ranks × {args.threads_per_rank} thread(s): {rate:8.0f} tok/s  speed-up {rate / single:.2f}  "
              f"efficiency {rate / (n * single):.2f}")
    total = max(args.ranks) * args.threads_per_rank
    rate = measure(1, total, args.pairs, args.params)
    print(f"1 rank × {total} threads (same cores, intra-op threads instead of ranks): {rate:8.0f} tok/s")


if __name__ == "__main__":
    main()
