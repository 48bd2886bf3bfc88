"""report: results/REPORT.md — the BLEU table, latent-use evidence, figures, the τ and γ_a
studies and the collected DVC experiments on one page, with the study plots."""

import json
from pathlib import Path

from vae import UserError, cli
from vae.figures import gamma_study, temperature_study
from vae.io import write_text
from vae.report import report_markdown
from vae.study import gamma_rows, temperature_rows


def main(args, params):
    out = Path(args.out)
    missing = [name for name in params.study.runs if not (Path(args.study) / f"{name}.json").is_file()]
    if missing:
        raise UserError(f"{Path(args.study) / (missing[0] + '.json')}: no such file; run the study first "
                        f"(dvc repro study; {len(missing)} of {len(params.study.runs)} runs missing)")
    studies = [json.loads((Path(args.study) / f"{name}.json").read_text()) for name in params.study.runs]
    temperature = temperature_rows(studies)
    gamma = gamma_rows(studies)
    plots = Path(args.plots)
    plots.mkdir(parents=True, exist_ok=True)
    if temperature:
        temperature_study(temperature, plots / "temperature.png")
    if gamma:
        gamma_study(gamma, plots / "gamma_a.png")
    figures = Path(args.figures)
    traversal = figures / "z_traversal.md"
    text = report_markdown(json.loads(Path(args.metrics).read_text()),
                           json.loads(Path(args.experiments).read_text()), {p.name for p in figures.glob("*.png")},
                           traversal.read_text(encoding="utf-8") if traversal.is_file() else "", params,
                           temperature, gamma)
    write_text(out, text)
    cli.console.print(f"report: {out} ({len(studies)} study runs)")


if __name__ == "__main__":
    p = cli.parser(__doc__)
    p.add_argument("--metrics", default="results/metrics.json")
    p.add_argument("--study", default="results/study")
    p.add_argument("--experiments", default="results/experiments.json")
    p.add_argument("--figures", default="results/figures")
    p.add_argument("--plots", default="results/study_plots")
    p.add_argument("--out", default="results/REPORT.md")
    cli.run(main, p)
