"""download: materialise the configured corpus as data/raw/{src,tgt}.txt + manifest.json."""

from pathlib import Path

from vae import cli
from vae.corpus import fetch


def main(args, params):
    manifest = fetch(params.download, Path(args.out), Path(args.cache))
    cli.console.print(f"download: {manifest['source']} corpus ready in {args.out}")


if __name__ == "__main__":
    p = cli.parser(__doc__)
    p.add_argument("--out", default="data/raw")
    p.add_argument("--cache", default="data/downloads", help="where downloaded archives are kept")
    cli.run(main, p)
