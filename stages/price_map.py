"""price_map: one point of the price map (params `price_map`): train a variant at the map's budget
with KL_z priced λ and KL(a) priced γ, and measure where its information goes."""

from pathlib import Path

from vae import UserError, cli
from vae.data import read_lines
from vae.io import write_json
from vae.price_map import point_name
from vae.price_point import run_point


def main(args, params):
    budget = params.price_map
    if args.kl_a is None and args.variant != budget.reference:
        raise UserError(f"--kl-a is needed for '{args.variant}'; only price_map.reference ({budget.reference!r}) has no a")
    if args.kl_a is not None and args.variant not in budget.variants:
        raise UserError(f"'{args.variant}' is not in price_map.variants ({', '.join(budget.variants) or 'empty'})")
    name = point_name(args.variant, args.kl_z, args.kl_a)
    out = Path(args.out) if args.out else Path("results/price_map/points") / f"{name}.json"
    point = run_point(params, args.variant, args.kl_z, args.kl_a, Path(args.data), Path(args.checkpoints) / out.stem,
                      read_lines(Path(args.references)))
    write_json(out, point)
    if point["diverged_at_step"] is not None:
        cli.console.print(f"price map {name}: diverged at step {point['diverged_at_step']}")
    else:
        cli.console.print(f"price map {name}: BLEU {point['bleu']:.2f}, KL_z/token {point['kl_z_per_token']:.3f}, "
                          f"KL_a/token {point['kl_a_per_token']:.3f}, ΔNLL z=0 {point['delta_nll_z_zero']}, "
                          f"ΔNLL a→prior {point['delta_nll_a_prior']}")


if __name__ == "__main__":
    p = cli.parser(__doc__)
    p.add_argument("--variant", required=True)
    p.add_argument("--kl-z", type=float, required=True, help="λ: the price of a nat of KL_z")
    p.add_argument("--kl-a", type=float, default=None, help="γ: the price of a nat of KL(a) (not for the reference)")
    p.add_argument("--data", default="data")
    p.add_argument("--checkpoints", default="checkpoints/price_map")
    p.add_argument("--references", default="data/prepared/test.tgt")
    p.add_argument("--out", default=None, help="the point's JSON (default results/price_map/points/<name>.json)")
    cli.run(main, p)
