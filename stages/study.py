"""study: one run of the τ / γ_a studies (params `study.runs.<name>`): train at the study's budget,
decode, and measure BLEU, KL, attention entropy and stability."""

from pathlib import Path

from vae import UserError, cli
from vae.data import read_lines
from vae.io import write_csv, write_json
from vae.study import run_study


def main(args, params):
    if args.run not in params.study.runs:
        raise UserError(f"no run '{args.run}' in params.yaml study.runs; known: {', '.join(params.study.runs)}")
    metrics, history = run_study(params, args.run, Path(args.data), Path(args.checkpoints) / args.run,
                                 read_lines(Path(args.references)))
    out = Path(args.out)
    write_json(out / f"{args.run}.json", metrics)
    write_csv(out / f"{args.run}.csv", history)
    if metrics["diverged_at_step"] is not None:
        cli.console.print(f"study {args.run}: diverged at step {metrics['diverged_at_step']}")
    else:
        cli.console.print(f"study {args.run}: BLEU {metrics['bleu']:.2f}, KL_a/token {metrics['kl_a_per_token']:.3f}, "
                          f"attention entropy {metrics['attention_entropy']:.2f} nats")


if __name__ == "__main__":
    p = cli.parser(__doc__)
    p.add_argument("--run", required=True)
    p.add_argument("--data", default="data")
    p.add_argument("--checkpoints", default="checkpoints/study")
    p.add_argument("--references", default="data/prepared/test.tgt")
    p.add_argument("--out", default="results/study")
    cli.run(main, p)
