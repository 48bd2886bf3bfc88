"""price_map_report: the price map's table (results/price_map/README.md) and heat maps
(results/price_map/maps/<variant>.png) from the points of the grid in params.yaml."""

import json
from pathlib import Path

from vae import UserError, cli
from vae.io import atomic_dir, write_text
from vae.price_map import current, heat_maps, markdown


def main(args, params):
    points = current([json.loads(path.read_text()) for path in sorted(Path(args.points).glob("*.json"))],
                     params.price_map)
    if not points:
        raise UserError(f"no price-map points in {args.points}: run `dvc repro price_map_report`")
    out = Path(args.out)
    write_text(out / "README.md", markdown(points, params))
    with atomic_dir(out / "maps") as tmp:
        paths = heat_maps(points, params, tmp)
    cli.console.print(f"price map: {len(points)} points, {len(paths)} maps in {out / 'maps'}")


if __name__ == "__main__":
    p = cli.parser(__doc__)
    p.add_argument("--points", default="results/price_map/points")
    p.add_argument("--out", default="results/price_map")
    cli.run(main, p)
