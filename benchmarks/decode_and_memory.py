"""Decoding speed and peak memory.

Decoding: sentences/s of batched greedy and beam search (the decode stage's `translate_ids`)
against decoding one sentence at a time, with a trained model on the first test sentences.
Memory: peak resident memory (CPU) or peak allocated memory (CUDA) of a training step at the
default sizes and `train.max_tokens`, and of batched beam search; each measurement runs in a
fresh process so that one peak does not hide another.

    PYTHONPATH=. python benchmarks/decode_and_memory.py --model models/deterministic.pt [--sentences 200]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time

import torch


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _reset_peak(device: torch.device) -> float:
    """The current baseline: on CUDA peaks can be reset, on CPU the process's peak so far is returned."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    return _peak_mb(device)


def decode_phase(model_path: str, sentences: int, beam: int, batched: bool, device_name: str,
                 params_file: str) -> dict:
    from vae.batching import Pairs
    from vae.config import load_params
    from vae.search import SearchSettings, translate_ids
    from vae.checkpoint import load_model, resolve_device

    params = load_params(params_file)
    device = resolve_device(device_name)
    model, _ = load_model(model_path, device)
    sources = [s.tolist() for s in Pairs.load("data/encoded/test.pt", sentences).src]
    settings = SearchSettings.from_config(params.decode, beam_size=beam)
    translate_ids(model, sources[:4], settings, params.decode.max_tokens, device)  # warm-up
    before = _reset_peak(device)
    start = time.perf_counter()
    if batched:
        translate_ids(model, sources, settings, params.decode.max_tokens, device)
    else:
        for s in sources:
            translate_ids(model, [s], settings, params.decode.max_tokens, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return {"sentences_per_s": len(sources) / (time.perf_counter() - start), "peak_mb": _peak_mb(device),
            "baseline_mb": before}


def train_phase(precision: str, device_name: str, params_file: str, steps: int = 5) -> dict:
    from vae.batching import Pairs, iterate
    from vae.config import load_params
    from vae.model import build_model
    from vae.objective import Prices, objective
    from vae.tokenizer import Tokenizers
    from vae.checkpoint import resolve_device

    params = load_params(params_file)
    device = resolve_device(device_name)
    tokenizers = Tokenizers.load("data/tokenizer")
    model = build_model(tokenizers.src.get_piece_size(), tokenizers.tgt.get_piece_size(), params.model,
                        params.variants["gaussian"]).to(device)
    optimiser = torch.optim.Adam(model.parameters())
    # the longest sentences make the largest padded batches: the worst case for memory
    pairs = Pairs.load("data/encoded/train.pt", 5000)
    order = sorted(range(len(pairs)), key=lambda i: -len(pairs.tgt[i]))[:1000]
    longest = Pairs([pairs.src[i] for i in order], [pairs.tgt[i] for i in order])
    before = _reset_peak(device)
    for step, batch in zip(range(steps), iterate(longest, params.train.max_tokens, seed=None)):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            terms = model(batch.to(device), sample=True)
        optimiser.zero_grad()
        objective(terms, Prices(0.05, 0.05, "sentence")).loss.backward()
        optimiser.step()
    return {"peak_mb": _peak_mb(device), "baseline_mb": before}


def isolated(fn, *args) -> dict:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(fn, args)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a trained model, e.g. models/deterministic.pt")
    p.add_argument("--sentences", type=int, default=200)
    p.add_argument("--device", default="auto")
    p.add_argument("--params", default="params.yaml", help="decoding settings and training sizes from here")
    args = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, model {args.model}, "
          f"{args.sentences} test sentences")
    for beam in (1, 5):
        alone = isolated(decode_phase, args.model, args.sentences, beam, False, args.device, args.params)
        batched = isolated(decode_phase, args.model, args.sentences, beam, True, args.device, args.params)
        name = "greedy" if beam == 1 else f"beam {beam}"
        print(f"{name:7s} one at a time {alone['sentences_per_s']:7.1f} sent/s | batched "
              f"{batched['sentences_per_s']:7.1f} sent/s (×{batched['sentences_per_s'] / alone['sentences_per_s']:.1f})"
              f" | peak memory batched {batched['peak_mb']:.0f} MB (model loaded: {batched['baseline_mb']:.0f} MB)")
    for precision in ("fp32", "bf16"):
        step = isolated(train_phase, precision, args.device, args.params)
        print(f"training step, default sizes, `gaussian`, longest batches, {precision}: peak memory "
              f"{step['peak_mb']:.0f} MB (before the first step: {step['baseline_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
