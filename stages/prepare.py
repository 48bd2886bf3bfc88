"""prepare: clean, filter, de-duplicate and split data/raw into data/prepared/{train,dev,test}.{src,tgt}."""

from pathlib import Path

from vae import cli
from vae.data import SPLITS, copied_from, prepare, read_aligned
from vae.io import atomic_dir, write_json, write_lines


def main(args, params):
    raw = Path(args.raw)
    result = prepare(read_aligned(raw / "src.txt", raw / "tgt.txt", copied_from(raw)), params.prepare)
    with atomic_dir(args.out) as out:  # all six files or none: never one split of this run beside another's
        for name in SPLITS:
            write_lines(out / f"{name}.src", (s for s, _ in result.splits[name]))
            write_lines(out / f"{name}.tgt", (t for _, t in result.splits[name]))
    write_json(args.metrics, result.counts)
    cli.console.print("prepare: " + ", ".join(f"{k} {v}" for k, v in result.counts.items()))


if __name__ == "__main__":
    p = cli.parser(__doc__)
    p.add_argument("--raw", default="data/raw")
    p.add_argument("--out", default="data/prepared")
    p.add_argument("--metrics", default="results/prepare.json")
    cli.run(main, p)
