"""The `dvc plots show` page, offline and checked in a real browser.

DVC's page loads vega, vega-lite and vega-embed from cdn.jsdelivr.net, so without a network it draws
nothing. `fetch` keeps a copy of the same three scripts (the versions DVC's page names, from the npm
registry) in .venv/vega/; `template` writes a page template that carries them inline, for
`dvc plots show --html-template` (or `dvc config plots.html_template`); `show` renders this
repository's plots with it, opens the page in headless Chromium (Debian's `chromium`, driven by
Playwright), fails on any script error or a plot that drew no line, and can save a screenshot:

    python tools/plots_page.py fetch                  # once; `make test` does it
    python tools/plots_page.py template offline.html  # then: dvc plots show --html-template offline.html
    python tools/plots_page.py show --screenshot results/plots.png

tests/test_plots_page.py runs `show`'s two halves (`render`, `check`) on a synthetic project.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENDOR = REPO / ".venv" / "vega"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))

PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <title>DVC Plot</title>
{scripts}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""
"""DVC's own page (dvc_render.html.PAGE_HTML) with the scripts inline in place of `{scripts}`, whose
CDN tags DVC would otherwise fill in."""


def packages() -> list[tuple[str, str]]:
    """(name, version) of each script DVC's page loads, in its order: vega, vega-lite, vega-embed."""
    from dvc_render.vega import VegaRenderer

    found = re.findall(r"cdn\.jsdelivr\.net/npm/([\w-]+)@([\w.-]+)", VegaRenderer.SCRIPTS)
    if not found:
        raise RuntimeError(f"no npm package named in dvc_render's page scripts:\n{VegaRenderer.SCRIPTS}")
    return found


def script_paths(vendor: Path = VENDOR) -> list[Path]:
    return [vendor / f"{name}@{version}.min.js" for name, version in packages()]


def fetch(vendor: Path = VENDOR) -> list[Path]:
    """Each package's build/<name>.min.js from the npm registry (`npm pack` checks its integrity), into
    `vendor`; a script already there is kept."""
    paths = script_paths(vendor)
    missing = [(name, version, path) for (name, version), path in zip(packages(), paths) if not path.is_file()]
    if missing:
        vendor.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            specs = [f"{name}@{version}" for name, version, _ in missing]
            subprocess.run(["npm", "pack", "--silent", "--pack-destination", tmp, *specs], check=True,
                           stdout=subprocess.DEVNULL)
            for name, version, path in missing:
                with tarfile.open(Path(tmp) / f"{name}-{version}.tgz") as tgz:
                    script = tgz.extractfile(f"package/build/{name}.min.js").read()
                partial = path.with_name(path.name + ".part")
                partial.write_bytes(script)
                partial.replace(path)
    return paths


def template(vendor: Path = VENDOR) -> str:
    """A page template for `dvc plots show --html-template` with the vendored scripts inline."""
    paths = script_paths(vendor)
    absent = [str(p) for p in paths if not p.is_file()]
    if absent:
        raise FileNotFoundError(f"no vendored vega scripts ({', '.join(absent)}): "
                                "run `python tools/plots_page.py fetch`")
    tags = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        if "</script" in text.lower() or "{plot_divs}" in text:
            raise ValueError(f"{path} cannot be inlined in a page template")
        tags.append(f"    <script>/* {path.name} */\n{text}\n    </script>")
    return PAGE.format(scripts="\n".join(tags))


def render(project: Path, out: Path, page_template: Path, env: dict[str, str] | None = None) -> Path:
    """`dvc plots show` in `project` with `page_template`, into `out`; the page's path."""
    command = ["dvc", "plots", "show", "--html-template", str(page_template), "-o", str(out)]
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=300)
    if result.returncode != 0 or "failed to load" in result.stdout + result.stderr:
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return out / "index.html"


# Runs before the page's own scripts: wraps vegaEmbed, when vega-embed defines it, so that each plot's
# outcome is recorded: its error, or the number of points of each line its view drew.
RECORD_PLOTS = """
window.__plots = [];
let embed;
function lines(mark, out) {
    if (mark.marktype === 'line') {
        out.push(mark.items.filter(i => Number.isFinite(i.x) && Number.isFinite(i.y)).length);
        return out;
    }
    for (const item of mark.items || []) for (const child of item.items || []) lines(child, out);
    return out;
}
function recorded(el, spec, options) {
    const plot = {id: String(el).replace(/^#/, ''), done: false};
    window.__plots.push(plot);
    const result = embed(el, spec, options);
    result.then(r => { plot.lines = lines(r.view.scenegraph().root, []); plot.done = true; },
                e => { plot.error = String(e); plot.done = true; });
    return result;
}
Object.defineProperty(window, 'vegaEmbed', {
    configurable: true,
    get() { return embed && recorded; },
    set(value) { embed = value; },
});
"""


@dataclass
class Plot:
    id: str
    lines: list[int]  # points drawn by each line of the plot (one line per series)
    error: str | None = None


@dataclass
class PageCheck:
    plots: list[Plot] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # script errors, console errors, failed or outside requests

    def problems(self, expected_plots: int | None = None) -> list[str]:
        found = list(self.errors)
        if expected_plots is not None and len(self.plots) != expected_plots:
            found.append(f"{len(self.plots)} plots on the page, {expected_plots} expected")
        for plot in self.plots:
            if plot.error:
                found.append(f"plot {plot.id!r}: {plot.error}")
            elif not any(n >= 2 for n in plot.lines):
                found.append(f"plot {plot.id!r} drew no line (points per line: {plot.lines})")
        return found


def check(page: Path, screenshot: Path | None = None, timeout_s: float = 60) -> PageCheck:
    """Open `page` in headless Chromium; every plot's outcome and every error; a full-page screenshot."""
    from playwright.sync_api import sync_playwright

    result = PageCheck()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), timeout=timeout_s * 1000)
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 800})
            tab.on("pageerror", lambda err: result.errors.append(f"script error: {err}"))
            tab.on("console", lambda msg: msg.type == "error" and result.errors.append(f"console error: {msg.text}"))
            tab.on("requestfailed", lambda req: result.errors.append(f"request failed: {req.url} ({req.failure})"))

            def outside(route):
                result.errors.append(f"the page fetched {route.request.url}: it must work offline")
                route.abort()

            tab.route(re.compile(r"^(?!file:|data:|blob:)"), outside)
            tab.add_init_script(RECORD_PLOTS)
            tab.goto(page.resolve().as_uri(), wait_until="load", timeout=timeout_s * 1000)
            tab.wait_for_function("() => window.__plots.every(p => p.done)", timeout=timeout_s * 1000)
            for plot in tab.evaluate("() => window.__plots"):
                result.plots.append(Plot(plot["id"], plot.get("lines", []), plot.get("error")))
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                tab.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return result


def expected_plots(dvc_yaml: Path) -> int:
    import yaml

    return len(yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")).get("plots") or [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help=f"vendor vega, vega-lite and vega-embed into {VENDOR}")
    write = commands.add_parser("template", help="write an offline page template")
    write.add_argument("out", type=Path)
    show = commands.add_parser("show", help="render this repository's plots offline and check them in Chromium")
    show.add_argument("--out", type=Path, default=Path("dvc_plots"), help="the page's folder (default dvc_plots)")
    show.add_argument("--screenshot", type=Path, help="save a full-page PNG here")
    args = parser.parse_args(argv)

    if args.command == "fetch":
        for path in fetch():
            print(path)
        return 0
    if args.command == "template":
        args.out.write_text(template(), encoding="utf-8")
        print(f"wrote {args.out}: dvc plots show --html-template {args.out}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        page_template = Path(tmp) / "offline.html"
        page_template.write_text(template(), encoding="utf-8")
        page = render(Path.cwd(), args.out.resolve(), page_template)
    outcome = check(page, args.screenshot)
    for plot in outcome.plots:
        print(f"{plot.id}: {len(plot.lines)} lines, {sum(plot.lines)} points", plot.error or "")
    problems = outcome.problems(expected_plots(Path.cwd() / "dvc.yaml"))
    for problem in problems:
        print(problem, file=sys.stderr)
    if args.screenshot:
        print(f"screenshot: {args.screenshot}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
