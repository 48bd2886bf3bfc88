"""Kept runs (results/runs/<name>/): their generated files, rebuilt by today's code.

A kept run's `RESULTS.md` and `headline/<variant>.json` are what `vae.report` makes of the run's own
`metrics.json` and `params.yaml` today, exactly as the evaluate stage writes them at the root: a rule
changed in `vae.claim` changes every folder's verdicts, never only the root's.
`python tools/regenerate_runs.py` rewrites them; tests/test_runs.py fails while one is stale.
"""

from __future__ import annotations

import json
from pathlib import Path

from vae.config import Params, parse, read_yaml
from vae.report import headline, results_table

# Sections of older params.yaml files that today's config no longer has (the study and price-map stages,
# replaced by studies/dvc.yaml): they configured stages that no kept RESULTS.md depends on.
OBSOLETE_SECTIONS = ("study", "price_map")


def load_run_params(path: str | Path) -> Params:
    """A kept run's params.yaml through today's validated config, with OBSOLETE_SECTIONS removed first
    (anything else today's config rejects is still an error)."""
    raw = read_yaml(Path(path))
    for section in OBSOLETE_SECTIONS:
        raw.pop(section, None)
    return parse(Params, raw, "")


def run_folders(root: str | Path) -> list[Path]:
    """Every folder under `root` holding a run's metrics.json, params.yaml and RESULTS.md."""
    return sorted(p.parent for p in Path(root).rglob("metrics.json")
                  if (p.parent / "params.yaml").is_file() and (p.parent / "RESULTS.md").is_file())


def generated_files(folder: str | Path) -> dict[str, str]:
    """The text of each generated file of the run in `folder`, keyed by its path relative to `folder`."""
    folder = Path(folder)
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    files = {"RESULTS.md": results_table(metrics, load_run_params(folder / "params.yaml"))}
    for name, row in headline(metrics).items():
        files[f"headline/{name}.json"] = json.dumps(row, indent=2) + "\n"  # as vae.io.write_json writes it
    return files


def stale_files(folder: str | Path) -> list[str]:
    """The generated files of `folder` that are missing or differ from what today's code writes, and any
    headline file of a variant the run does not have."""
    folder = Path(folder)
    expected = generated_files(folder)
    stale = [rel for rel, text in expected.items()
             if not (folder / rel).is_file() or (folder / rel).read_bytes() != text.encode("utf-8")]
    extra = [f"headline/{f.name}" for f in sorted((folder / "headline").glob("*.json"))
             if f"headline/{f.name}" not in expected]
    return stale + extra
