"""download: materialise the configured corpus as data/raw/{src,tgt}.txt + manifest.json."""

from pathlib import Path

from rich.markup import escape

from vae import cli
from vae.corpus import fetch


def main(args, params):
    cfg = params.download
    if cfg.source == "local":
        tracked = Path("data/local").resolve()
        for key in ("local_src", "local_tgt"):
            value = getattr(cfg, key)
            if value and Path(value).is_file() and tracked not in Path(value).resolve().parents:
                cli.console.print(f"[yellow]warning:[/] download.{key} {escape(value)} is outside data/local/, so DVC will not "
                                  "notice when it changes; move it there to keep results in step with it")
    manifest = fetch(cfg, Path(args.out), Path(args.cache))
    cli.console.print(f"download: {manifest['source']} corpus ready in {args.out}")


if __name__ == "__main__":
    p = cli.parser(__doc__)
    p.add_argument("--out", default="data/raw")
    p.add_argument("--cache", default="data/downloads", help="where downloaded archives are kept")
    cli.run(main, p)
