"""collect: gather DVC experiments into results/experiments.json (BLEU mean ± std over seeds),
which the report stage reads.

    dvc exp show --json | python -m stages.collect && dvc repro report
"""

import json
import sys

from vae import UserError, cli
from vae.experiments import collect
from vae.io import write_json


def main(args, params):
    text = sys.stdin.read() if args.exp_show == "-" else open(args.exp_show, encoding="utf-8").read()
    try:
        exp_show = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{args.exp_show}: not the JSON of `dvc exp show --json` ({err})") from None
    collected = collect(exp_show)
    write_json(args.out, collected)
    cli.console.print(f"collect: {len(collected['runs'])} runs in {len(collected['groups'])} settings → {args.out}")


if __name__ == "__main__":
    p = cli.parser(__doc__)
    p.add_argument("exp_show", nargs="?", default="-", help="`dvc exp show --json` output (default: stdin)")
    p.add_argument("--out", default="results/experiments.json")
    cli.run(main, p)
