"""diagnose: latent-use evidence for one variant — KLs, active units, I(x;z), ablations, diversity."""

import time
from pathlib import Path

from vae import cli
from vae.batching import Pairs
from vae.data import read_lines
from vae.diagnostics import latent_evidence
from vae.io import write_json
from vae.tokenizer import Tokenizers
from vae.checkpoint import load_model, resolve_device


def main(args, params):
    device = resolve_device(params.decode.device)
    tokenizers = Tokenizers.load(Path(args.data) / "tokenizer")
    model, _ = load_model(Path(args.models) / f"{args.name}.pt", device, tokenizer=Path(args.data) / "tokenizer")
    test = Pairs.load(Path(args.data) / "encoded" / "test.pt", params.diagnose.max_sentences)
    references = read_lines(Path(args.references))[: len(test)]
    start = time.perf_counter()
    out = latent_evidence(model, test, references, tokenizers, params.diagnose, params.decode, device)
    out["seconds"] = time.perf_counter() - start
    write_json(Path(args.out) / f"{args.name}.json", out)
    cli.console.print(f"diagnose {args.name}: " + ", ".join(f"{k} {v:.4g}" for k, v in out.items()
                                                               if isinstance(v, (int, float))))


if __name__ == "__main__":
    p = cli.parser(__doc__)
    cli.model_arguments(p)
    p.add_argument("--data", default="data")
    p.add_argument("--models", default="models")
    p.add_argument("--references", default="data/prepared/test.tgt")
    p.add_argument("--out", default="results/diagnose")
    cli.run(main, p)
