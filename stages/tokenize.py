"""tokenize: train SentencePiece on the training split only, then encode every split."""

from pathlib import Path

from vae import cli
from vae.data import SPLITS, read_aligned
from vae.io import write_json
from vae.tokenizer import Tokenizers, encode_split, write_models


def main(args, params):
    prepared = Path(args.prepared)
    splits = {name: read_aligned(prepared / f"{name}.src", prepared / f"{name}.tgt") for name in SPLITS}
    write_models(splits["train"], params.tokenize, Path(args.tokenizer))
    tokenizers = Tokenizers.load(args.tokenizer)
    stats = {name: encode_split(pairs, tokenizers, Path(args.out) / f"{name}.pt") for name, pairs in splits.items()}
    stats["vocab_size"] = {"src": tokenizers.src.get_piece_size(), "tgt": tokenizers.tgt.get_piece_size()}
    write_json(args.metrics, stats)
    cli.console.print(f"tokenize: vocabulary {stats['vocab_size']}, train unk rate {stats['train']['unk_rate']:.5f}")


if __name__ == "__main__":
    p = cli.parser(__doc__)
    p.add_argument("--prepared", default="data/prepared")
    p.add_argument("--tokenizer", default="data/tokenizer")
    p.add_argument("--out", default="data/encoded")
    p.add_argument("--metrics", default="results/tokenize.json")
    cli.run(main, p)
