"""Beam-search decoding speed and BLEU of one trained model on the test split, fp32 against bf16.

    PYTHONPATH=. python benchmarks/decode_speed.py --model models/plain.pt [--sentences 2000] [--beam 5] [--record]

With --record, the fastest setting's speed and BLEU go into results/time_to_bleu.json as its `decode`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from vae.batching import Pairs
from vae.checkpoint import load_model
from vae.data import read_lines
from vae.metrics import corpus_scores
from vae.search import SearchSettings, translate_ids
from vae.tokenizer import Tokenizers

from time_to_bleu import machine, merge, provenance  # noqa: E402 (benchmarks/ is on the path when run as a script)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", default="data")
    p.add_argument("--sentences", type=int, default=2000)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--max-tokens", type=int, nargs="+", default=[6000])
    p.add_argument("--record", action="store_true", help="write the fastest into results/time_to_bleu.json")
    args = p.parse_args()
    tokenizers = Tokenizers.load(Path(args.data) / "tokenizer")
    model, _ = load_model(args.model, tokenizer=Path(args.data) / "tokenizer")
    test = Pairs.load(Path(args.data) / "encoded" / "test.pt", args.sentences)
    references = read_lines(Path(args.data) / "prepared" / "test.tgt")[: len(test)]
    sources = [s.tolist() for s in test.src]
    measured = []
    for max_tokens in args.max_tokens:
        for precision in ("fp32", "bf16"):
            settings = SearchSettings(beam_size=args.beam, precision=precision)
            translate_ids(model, sources[:50], settings, max_tokens)  # warm-up
            start = time.perf_counter()
            ids = translate_ids(model, sources, settings, max_tokens)
            seconds = time.perf_counter() - start
            scores = corpus_scores(tokenizers.tgt.decode(ids), references)
            measured.append({"model": args.model, "beam": args.beam, "precision": precision, "max_tokens": max_tokens,
                             "sentences": len(sources), "seconds": round(seconds, 1),
                             "sentences_per_s": round(len(sources) / seconds, 1), "bleu": scores["bleu"],
                             "bleu_signature": scores["bleu_signature"], "threads": torch.get_num_threads()})
            print(json.dumps(measured[-1]), flush=True)
    if args.record:
        best = max(measured, key=lambda m: m["sentences_per_s"])
        merge(Path("results/time_to_bleu.json"), [], {
            f"beam{args.beam}_sentences_per_s": best["sentences_per_s"], "model": best["model"],
            "sentences": best["sentences"], "test_bleu": best["bleu"], "bleu_signature": best["bleu_signature"],
            "machine": machine(torch.device("cpu"), best["precision"], best["threads"]),
            "max_tokens": best["max_tokens"], "all": measured,
            **provenance({"test_bleu": args.beam}, SearchSettings(), {"decode": best["precision"]})})


if __name__ == "__main__":
    main()
