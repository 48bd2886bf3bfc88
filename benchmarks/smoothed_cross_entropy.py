"""The label-smoothed cross-entropy alone, forward and backward: PyTorch's against vae/model/loss.py's.

One training batch's shape (--tokens × --vocab logits, bf16 as autocast leaves them, or fp32). The
two alternate --repeats times on fresh copies of the same logits, so the machine's drifting speed
falls on both alike; each one's median and range are printed, and the median of the paired ratios.

    PYTHONPATH=. python benchmarks/smoothed_cross_entropy.py [--tokens 1500] [--vocab 8000] [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from vae.model.loss import label_smoothed_cross_entropy


def timed(loss_fn, logits: torch.Tensor, target: torch.Tensor, grad_loss: torch.Tensor) -> float:
    """Seconds of one forward and backward on a fresh leaf copy of `logits`."""
    logits = logits.detach().clone().requires_grad_()
    start = time.perf_counter()
    loss_fn(logits, target).backward(grad_loss)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=1500)
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--smoothing", type=float, default=0.1)
    p.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16", help="the logits' dtype")
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args()
    torch.manual_seed(0)
    logits = (4 * torch.randn(args.tokens, args.vocab)).to(torch.bfloat16 if args.dtype == "bf16" else torch.float32)
    target, grad_loss = torch.randint(0, args.vocab, (args.tokens,)), torch.rand(args.tokens)
    losses = {"pytorch": lambda x, y: F.cross_entropy(x.float(), y, reduction="none", label_smoothing=args.smoothing),
              "fused": lambda x, y: label_smoothed_cross_entropy(x, y, args.smoothing)}
    seconds = {name: [] for name in losses}
    for repeat in range(args.repeats + 1):  # the first is warm-up
        for name, loss_fn in losses.items():
            elapsed = timed(loss_fn, logits, target, grad_loss)
            if repeat:
                seconds[name].append(elapsed)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.tokens} × {args.vocab} {args.dtype} "
          f"logits, ε = {args.smoothing}, {args.repeats} repeats")
    for name, times in seconds.items():
        print(f"{name:8s} median {1e3 * statistics.median(times):6.1f} ms   range {1e3 * min(times):6.1f}–"
              f"{1e3 * max(times):6.1f} ms")
    ratios = sorted(old / new for old, new in zip(seconds["pytorch"], seconds["fused"]))
    print(f"speed-up (pytorch / fused, paired) median {statistics.median(ratios):.2f}, range "
          f"{ratios[0]:.2f}–{ratios[-1]:.2f}")


if __name__ == "__main__":
    main()
