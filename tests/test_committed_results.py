"""The results committed at the repository's root belong to the committed params.yaml and were
written by the pipeline: what `dvc metrics show` prints in a fresh clone is what `dvc repro`
produced with these settings."""

import hashlib
import json
from pathlib import Path

from vae.config import read_yaml
from vae.experiments import flatten
from vae.report import headline

REPO = Path(__file__).resolve().parents[1]


def locked_stages() -> dict:
    # DVC writes dvc.lock as YAML 1.2 (5e-06 a float), as read_yaml reads it; PyYAML's 1.1 rules give a string.
    return read_yaml(REPO / "dvc.lock")["stages"]


def test_every_locked_stage_ran_with_the_committed_params():
    params = flatten(read_yaml(REPO / "params.yaml"))
    stale = sorted({f"{key} was {value!r} for the committed results, params.yaml has {params.get(key, '(missing)')!r}"
                    for entry in locked_stages().values()
                    for key, value in flatten(entry.get("params", {}).get("params.yaml", {})).items()
                    if params.get(key, "(missing)") != value})
    assert not stale, ("params.yaml changed since the committed run; re-run `dvc repro` and commit dvc.lock "
                       "with its results, or keep the old values:\n" + "\n".join(stale))


def test_every_variant_of_params_was_trained_and_scored_by_the_committed_run():
    """A variant added to params.yaml without `dvc repro` has no lock entry and no row: the check above
    cannot see it (it compares the keys the lock has)."""
    variants = set(read_yaml(REPO / "params.yaml")["variants"])
    stages = locked_stages()
    for stage in ("train", "decode", "diagnose"):
        assert {name.split("@", 1)[1] for name in stages if name.startswith(f"{stage}@")} == variants, stage
    assert set(json.loads((REPO / "results" / "metrics.json").read_text(encoding="utf-8"))["variants"]) == variants


def results_outs() -> list[tuple[str, dict]]:
    """Every output under results/ that the root dvc.lock lists, with its stage."""
    return [(stage, out) for stage, entry in locked_stages().items() for out in entry.get("outs", [])
            if out["path"].startswith("results/")]


def dir_md5(folder: Path) -> tuple[str, int]:
    """DVC's hash of a folder (`<md5>.dir` in dvc.lock): the md5 of its manifest, the JSON list of each
    file's md5 and relative path, sorted by path; and the number of files."""
    entries = sorted(({"md5": hashlib.md5(f.read_bytes()).hexdigest(), "relpath": f.relative_to(folder).as_posix()}
                      for f in folder.rglob("*") if f.is_file()), key=lambda e: e["relpath"])
    manifest = json.dumps(entries, sort_keys=True).encode("utf-8")
    return hashlib.md5(manifest).hexdigest() + ".dir", len(entries)


def test_dir_md5_is_dvcs_folder_hash(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.json").write_text("{}\n")
    (tmp_path / "sub" / "b.txt").write_text("b")
    manifest = '[{"md5": "8a80554c91d9fca8acb82f023de02f11", "relpath": "a.json"}, ' \
               '{"md5": "92eb5ffee6ae2fec3ad71c777531578f", "relpath": "sub/b.txt"}]'
    assert dir_md5(tmp_path) == (hashlib.md5(manifest.encode()).hexdigest() + ".dir", 2)


def test_every_committed_result_file_is_the_one_the_run_wrote():
    """Every results/ output of the root dvc.lock, files by their md5 and folders (headline/, figures/)
    by DVC's folder hash, so no file in them was edited, added or removed by hand."""
    outs = results_outs()
    files = folders = 0
    edited = []
    for stage, out in outs:
        path = REPO / out["path"]
        if out["md5"].endswith(".dir"):  # a folder out (cache: false): its files are in git, its manifest is not
            folders += 1
            ok = path.is_dir() and dir_md5(path) == (out["md5"], out["nfiles"])
        else:
            files += 1
            ok = path.is_file() and hashlib.md5(path.read_bytes()).hexdigest() == out["md5"]
        if not ok:
            edited.append(f"{stage}: {out['path']}")
    assert files + folders == len(outs), f"checked {files} files and {folders} folders of the lock's {len(outs)}"
    assert folders >= 1 and "results/headline" in {out["path"] for _, out in outs}
    assert not edited, "changed or missing since `dvc repro` wrote them (dvc.lock):\n" + "\n".join(edited)


def test_the_root_headline_files_are_headline_of_metrics_json():
    """results/headline/<variant>.json is what vae.report.headline makes of results/metrics.json."""
    expected = headline(json.loads((REPO / "results" / "metrics.json").read_text(encoding="utf-8")))
    found = {f.stem: json.loads(f.read_text(encoding="utf-8")) for f in (REPO / "results" / "headline").glob("*.json")}
    assert found == expected


def test_the_root_documents_show_the_committed_studies_files():
    """RESULTS.md (evaluate) and REPORT.md (report) read results/seeds.json and results/price_curve.json
    without declaring them (a declared dependency would make the root `dvc repro` run the studies pipeline),
    so DVC cannot see them go stale: studies committed without `dvc repro -f -s evaluate report` fail here."""
    from stages.report import studies
    from vae.config import load_params
    from vae.studies import read_if_present, seeds_section

    rule = load_params(REPO / "params.yaml").claim
    seeds = read_if_present(REPO / "results/seeds.json")
    report = "\n".join(studies(seeds, read_if_present(REPO / "results/price_curve.json"), rule))
    assert report in (REPO / "results/REPORT.md").read_text(encoding="utf-8"), \
        "results/REPORT.md is older than the studies' files: run `dvc repro -f -s report`"
    assert "\n".join(seeds_section(seeds, rule)) in (REPO / "results/RESULTS.md").read_text(encoding="utf-8"), \
        "results/RESULTS.md is older than results/seeds.json: run `dvc repro -f -s evaluate`"
