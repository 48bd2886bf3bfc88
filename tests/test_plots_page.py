"""The `dvc plots show` page in a real browser (tools/plots_page.py).

dvc.yaml's plots over synthetic DVCLive histories (written by vae.live, as training writes them), in a
fresh git+DVC project, rendered with the offline page template and opened in headless Chromium: no
script error, every plot of dvc.yaml drawn with a line per series. The full-page screenshot is written
to the test's tmp_path and, when PLOTS_SCREENSHOT=<path> is set, there too.

Needs Debian's chromium, Playwright and the vendored vega scripts, which `make test` installs: without
them the tests fail under CI=true (a browser test that skips in CI could never fail) and skip otherwise.
"""

from __future__ import annotations

import importlib.util
import math
import os
import random
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from test_pipeline import env, sh
from vae.live import log, open_log

sys.path.insert(0, str(REPO / "tools"))
import plots_page  # noqa: E402

STEPS = 60
LOG_EVERY = 25


def require(ok: bool, why: str) -> None:
    if ok:
        return
    if os.environ.get("CI", "").lower() in {"true", "1"}:
        pytest.fail(f"{why}; under CI=true the browser test must run (`make test` installs what it needs)")
    pytest.skip(why)


def histories(dvc_yaml: dict) -> dict[Path, set[str]]:
    """Each DVCLive directory the plots read, and the metric names (`train/loss`) read from it."""
    found: dict[Path, set[str]] = {}
    for plot in dvc_yaml["plots"]:
        (spec,) = plot.values()
        for tsv, column in spec["y"].items():
            directory, name = tsv.split("/plots/metrics/")
            assert Path(name).stem == column, f"{tsv}: DVCLive would name its column {Path(name).stem!r}"
            found.setdefault(Path(directory), set()).add(name.removesuffix(".tsv"))
    return found


def test_every_variant_of_params_has_a_curve_of_every_plotted_metric():
    """dvc.yaml's plots name their files one by one: a variant added to params.yaml must be added there too."""
    dvc_yaml = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))
    variants = set(yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))["variants"])
    drawn: dict[str, set[str]] = {}
    for directory, names in histories(dvc_yaml).items():
        for name in names:
            drawn.setdefault(name, set()).add(directory.name)
    missing = {name: sorted(variants - found) for name, found in drawn.items() if variants - found}
    assert not missing, f"dvc.yaml plots lack these variants' curves: {missing}"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, dict]:
    """A git+DVC project with the repository's dvc.yaml and params.yaml and a history for every plot."""
    require(plots_page.CHROMIUM.is_file() and os.access(plots_page.CHROMIUM, os.X_OK),
            f"no {plots_page.CHROMIUM} (Debian: apt-get install chromium; or set CHROMIUM)")
    require(importlib.util.find_spec("playwright") is not None, "no playwright (pip install -e '.[test]')")
    missing = [str(p) for p in plots_page.script_paths() if not p.is_file()]
    require(not missing, f"no vendored vega scripts {missing} (python tools/plots_page.py fetch)")

    tmp = tmp_path_factory.mktemp("plots")
    root = tmp / "project"
    root.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy2(REPO / name, root / name)
    e = env(tmp / "dvc-site-cache")
    sh(root, "git", "init", "-q", env_=e)
    sh(root, "dvc", "init", "-q", env_=e)
    sh(root, "dvc", "config", "core.analytics", "false", env_=e)

    rng = random.Random(0)
    logs = histories(yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8")))
    for rank, (directory, names) in enumerate(sorted(logs.items())):
        live = open_log(root / directory, 0)
        for i in range(1, STEPS + 1):
            step = i * LOG_EVERY
            log(live, step, {name: (1 + rank) * math.exp(-step / 400) + 0.2 * rank + 0.05 * rng.random()
                             for name in sorted(names)})
    return root, e


def test_the_offline_page_draws_every_plot_of_dvc_yaml(project, tmp_path):
    root, e = project
    page_template = tmp_path / "offline.html"
    page_template.write_text(plots_page.template(), encoding="utf-8")
    page = plots_page.render(root, tmp_path / "dvc_plots", page_template, env=e)
    screenshot = tmp_path / "plots.png"

    outcome = plots_page.check(page, screenshot)

    plots = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["plots"]
    assert outcome.problems(expected_plots=len(plots)) == []
    for plot, spec in zip(outcome.plots, plots):
        (series,) = [len(s["y"]) for s in spec.values()]
        complete = [n for n in plot.lines if n == STEPS]
        assert len(complete) >= series, f"{plot.id}: {series} series, lines of {plot.lines} points"
    assert screenshot.stat().st_size > 50_000  # a page of plots (≈ 330 kB), not a blank one (≈ 5 kB)
    if os.environ.get("PLOTS_SCREENSHOT"):
        shutil.copy2(screenshot, os.environ["PLOTS_SCREENSHOT"])


def test_dvcs_default_page_is_reported_as_unable_to_draw_offline(project, tmp_path):
    """The check fails a page that cannot draw: DVC's own, whose scripts come from a CDN."""
    root, e = project
    sh(root, "dvc", "plots", "show", "-o", str(tmp_path / "dvc_plots"), env_=e)

    problems = plots_page.check(tmp_path / "dvc_plots" / "index.html", timeout_s=30).problems(expected_plots=9)

    assert any("it must work offline" in p and "cdn.jsdelivr.net" in p for p in problems), problems
    assert any(p.startswith("script error") for p in problems), problems  # vegaEmbed is not defined
    assert "0 plots on the page, 9 expected" in problems


def test_a_plot_without_a_drawn_line_or_a_missing_plot_is_a_problem():
    page = plots_page.PageCheck(plots=[plots_page.Plot("loss", [60, 60]), plots_page.Plot("kl", [0, 1]),
                                       plots_page.Plot("nll", [], error="Error: Invalid spec")])
    assert page.problems(expected_plots=4) == [
        "3 plots on the page, 4 expected",
        "plot 'kl' drew no line (points per line: [0, 1])",
        "plot 'nll': Error: Invalid spec",
    ]
    assert plots_page.PageCheck(plots=[plots_page.Plot("loss", [2])]).problems(expected_plots=1) == []
