"""decode: translate the test split (or `--split dev`) with one trained variant (beam search), detokenised."""

import time
from pathlib import Path

from vae import cli
from vae.batching import Pairs
from vae.io import write_json, write_lines
from vae.search import SearchSettings, translate_ids
from vae.tokenizer import Tokenizers
from vae.checkpoint import device_name, load_model, resolve_device


def main(args, params):
    cfg = params.decode
    device = resolve_device(cfg.device)
    tokenizers = Tokenizers.load(Path(args.data) / "tokenizer")
    model, _ = load_model(Path(args.models) / f"{args.name}.pt", device, tokenizer=Path(args.data) / "tokenizer")
    test = Pairs.load(Path(args.data) / "encoded" / f"{args.split}.pt", cfg.max_sentences)
    settings = SearchSettings.from_config(cfg)
    start = time.perf_counter()
    hypotheses = translate_ids(model, [s.tolist() for s in test.src], settings, cfg.max_tokens, device)
    seconds = time.perf_counter() - start
    out = Path(args.out)
    write_lines(out / f"{args.name}.txt", tokenizers.tgt.decode(hypotheses))
    write_json(out / f"{args.name}.json", {"sentences": len(hypotheses), "seconds": seconds,
                                               "sentences_per_s": len(hypotheses) / seconds, "device": str(device),
                                               "device_name": device_name(device),
                                               "precision": cfg.precision, "beam_size": cfg.beam_size,
                                               "split": args.split})
    cli.console.print(f"decode {args.name}: {len(hypotheses)} sentences in {seconds:.1f}s on {device}")


if __name__ == "__main__":
    p = cli.parser(__doc__)
    cli.model_arguments(p)
    p.add_argument("--split", choices=("test", "dev"), default="test")
    p.add_argument("--data", default="data")
    p.add_argument("--models", default="models")
    p.add_argument("--out", default="results/decode")
    cli.run(main, p)
