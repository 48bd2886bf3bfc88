"""decode: translate the test split with one trained variant (beam search), detokenised."""

import time
from pathlib import Path

from vae import cli
from vae.batching import Pairs
from vae.io import write_json, write_lines
from vae.search import SearchSettings, translate_ids
from vae.tokenizer import Tokenizers
from vae.checkpoint import load_model, resolve_device


def main(args, params):
    cfg = params.decode
    device = resolve_device(cfg.device)
    tokenizers = Tokenizers.load(Path(args.data) / "tokenizer")
    model, _ = load_model(Path(args.models) / f"{args.variant}.pt", device, tokenizer=Path(args.data) / "tokenizer")
    test = Pairs.load(Path(args.data) / "encoded" / "test.pt", cfg.max_sentences)
    settings = SearchSettings.from_config(cfg)
    start = time.perf_counter()
    hypotheses = translate_ids(model, [s.tolist() for s in test.src], settings, cfg.max_tokens, device)
    seconds = time.perf_counter() - start
    out = Path(args.out)
    write_lines(out / f"{args.variant}.txt", tokenizers.tgt.decode(hypotheses))
    write_json(out / f"{args.variant}.json", {"sentences": len(hypotheses), "seconds": seconds,
                                               "sentences_per_s": len(hypotheses) / seconds, "device": str(device),
                                               "precision": cfg.precision, "beam_size": cfg.beam_size})
    cli.console.print(f"decode {args.variant}: {len(hypotheses)} sentences in {seconds:.1f}s on {device}")


if __name__ == "__main__":
    p = cli.parser(__doc__)
    p.add_argument("--variant", required=True)
    p.add_argument("--data", default="data")
    p.add_argument("--models", default="models")
    p.add_argument("--out", default="results/decode")
    cli.run(main, p)
