"""translate: source sentences on stdin, translations on stdout, with any trained variant.

    python -m stages.translate --variant gumbel < sentences.fr
    python -m stages.translate --variant gaussian --samples 5 < sentences.fr   # 5 draws of z and a

Not a DVC stage: a tool for reading what a model does. Empty lines give empty lines; lines longer
than --max-subwords are cut, with a warning on stderr.
"""

import sys
from pathlib import Path

from vae import UserError, cli
from vae.data import normalise
from vae.search import SearchSettings, translate_ids
from vae.tokenizer import Tokenizers
from vae.checkpoint import load_model, resolve_device


def read_stdin() -> list[str]:
    """Lines of standard input, which must be UTF-8; a bad byte is reported with its line number."""
    lines = []
    for number, raw in enumerate(sys.stdin.buffer, start=1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise UserError(f"stdin, line {number}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
    return lines


def main(args, params):
    if args.variant not in params.variants:
        raise UserError(f"no variant '{args.variant}' in {args.params}; known: {', '.join(params.variants)}")
    if args.samples < 0:
        raise UserError(f"--samples must be 0 (the search of decode.*) or a positive number of draws, got {args.samples}")
    if args.max_subwords < 1:
        raise UserError(f"--max-subwords must be at least 1, got {args.max_subwords}")
    cfg = params.decode
    device = resolve_device(cfg.device)
    tokenizers = Tokenizers.load(Path(args.data) / "tokenizer")
    model, _ = load_model(Path(args.models) / f"{args.name}.pt", device, tokenizer=Path(args.data) / "tokenizer")
    lines = [normalise(line, params.prepare.unicode_form) for line in read_stdin()]
    sources = tokenizers.src.encode(lines)
    for number, ids in enumerate(sources, start=1):
        if not lines[number - 1]:
            cli.console.print(f"[yellow]warning:[/] line {number} is empty; its translation is empty too")
        elif len(ids) > args.max_subwords:
            cli.console.print(f"[yellow]warning:[/] line {number} has {len(ids)} subwords; only the first "
                              f"{args.max_subwords} are translated")
            sources[number - 1] = ids[: args.max_subwords]
    keep = [i for i, line in enumerate(lines) if line]
    draws = max(args.samples, 1)
    settings = SearchSettings.from_config(cfg, sample=True, beam_size=1) if args.samples else SearchSettings.from_config(cfg)
    outputs = [[""] * draws for _ in lines]
    for draw in range(draws):
        hypotheses = translate_ids(model, [sources[i] for i in keep], settings, cfg.max_tokens, device)
        for i, text in zip(keep, tokenizers.tgt.decode(hypotheses)):
            outputs[i][draw] = text
    for texts in outputs:
        print("\t".join(texts))


if __name__ == "__main__":
    p = cli.parser(__doc__)
    cli.model_arguments(p)
    p.add_argument("--samples", type=int, default=0, help="k > 0: k sampled translations per line, tab-separated")
    p.add_argument("--max-subwords", type=int, default=200)
    p.add_argument("--data", default="data")
    p.add_argument("--models", default="models")
    cli.run(main, p)
