"""The root run's numbers quoted in README.md and results/README.md are those of results/metrics.json
(and the run's own train/ and decode/ records): a re-run that moves them fails here until the prose follows.

Only marked blocks are read: the lines after `<!-- checked against metrics.json by tests/test_docs_numbers.py -->`
up to a blank line (or the next list item). In a table every column named in COLUMNS is compared; in prose
every "`<variant>` <number with two decimals>" must be that variant's test BLEU.
"""

import csv
import json
import re
from pathlib import Path

import pytest

from vae.config import read_yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
MARKER = "<!-- checked against metrics.json by tests/test_docs_numbers.py -->"
DOCS = [ROOT / "README.md", RESULTS / "README.md"]
METRICS = json.loads((RESULTS / "metrics.json").read_text(encoding="utf-8"))


def _delta(latent: dict, key: str) -> str:
    return f"{latent[key] - latent['nll_per_token']:+.3f}" if key in latent else "–"


def _kl(latent: dict, key: str, has: bool) -> str:
    return f"{latent[key]:.3f}" if has else "–"


def expected_cells(name: str) -> dict[str, str]:
    """Each table column's text for variant `name`, as the docs print it."""
    score = METRICS["variants"][name]
    latent, train = score["latent"], score["train"]
    decoded = json.loads((RESULTS / "decode" / f"{name}.json").read_text(encoding="utf-8"))
    ci = METRICS["bootstrap"]["deterministic"][name]["bleu_ci95"]
    has_z = "nll_z_zero" in latent
    return {"BLEU (beam 5)": f"{score['bleu']:.2f}", "95% CI": f"± {ci:.2f}", "chrF": f"{score['chrf']:.2f}",
            "dev PPL": f"{train['dev_ppl']:.2f}", "KL_z/token": _kl(latent, "kl_z_per_token", has_z),
            "KL_a/token": _kl(latent, "kl_a_per_token", "nll_a_prior" in latent),
            "ΔNLL z=0": _delta(latent, "nll_z_zero"), "ΔNLL a→prior": _delta(latent, "nll_a_prior"),
            "train min": f"{train['train_minutes']:.1f}", "decode sent/s": f"{decoded['sentences_per_s']:.0f}"}


COLUMNS = list(expected_cells("plain"))


def marked_blocks(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, lines) of every block that follows the marker."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        block = []
        for following in lines[i + 1:]:
            if not following.strip() or (block and following.startswith("- ")):
                break
            block.append(following)
        blocks.append((i + 2, block))
    return blocks


def cells(row: str) -> list[str]:
    return [c.strip().strip("*") for c in row.strip().strip("|").split("|")]


def mismatches(block: list[str]) -> list[str]:
    wrong = []
    if block[0].startswith("|"):
        header = cells(block[0])
        for row in block[2:]:
            values = dict(zip(header, cells(row)))
            name = values["variant"].strip("`")
            for column, want in expected_cells(name).items():
                if column in values and values[column] != want:
                    wrong.append(f"`{name}` {column}: {values[column]} (metrics: {want})")
        return wrong
    for name, number in re.findall(r"`([\w-]+)` (\d+\.\d\d)\b", " ".join(block)):
        if name in METRICS["variants"] and f"{METRICS['variants'][name]['bleu']:.2f}" != number:
            wrong.append(f"`{name}` {number} (metrics.json BLEU: {METRICS['variants'][name]['bleu']:.2f})")
    return wrong


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_root_runs_numbers_in_the_docs_are_metrics_json(doc):
    blocks = marked_blocks(doc)
    assert blocks, f"{doc.name}: no block marked {MARKER}"
    wrong = [f"{doc.name}:{line}: {m}" for line, block in blocks for m in mismatches(block)]
    assert not wrong, "quoted numbers differ from the root run's files; update the prose:\n" + "\n".join(wrong)


def test_the_checked_table_has_every_variant_and_column():
    table = next(block for _, block in marked_blocks(RESULTS / "README.md") if block[0].startswith("|"))
    assert {cells(row)[0].strip("`") for row in table[2:]} == set(METRICS["variants"])
    assert set(COLUMNS) <= set(cells(table[0]))


def test_a_changed_number_is_caught():
    want = expected_cells("plain")
    header = "| variant | " + " | ".join(COLUMNS) + " |"
    row = "| `plain` | " + " | ".join(want[c] for c in COLUMNS) + " |"
    assert mismatches([header, "|---|", row]) == []
    bleu = want["BLEU (beam 5)"]
    moved = f"{float(bleu) + 0.01:.2f}"
    assert mismatches([header, "|---|", row.replace(bleu, moved, 1)]) == [f"`plain` BLEU (beam 5): {moved} (metrics: {bleu})"]
    gumbel, none = (f"{METRICS['variants'][v]['bleu']:.2f}" for v in ("gumbel", "none"))
    wrong = f"{float(gumbel) + 0.01:.2f}"
    assert mismatches([f"the root run: `gumbel` {wrong}, `none` {none}"]) == [f"`gumbel` {wrong} (metrics.json BLEU: {gumbel})"]


@pytest.mark.parametrize("command", ["make repro", "make test"])
def test_the_readme_quotes_the_latest_measured_time(command):
    """The README's table row for `command` states the minutes and the CPU of the command's latest successful
    row in results/timings.tsv (written by tools/timed.py), or "not measured" where it has none."""
    rows = [r for r in csv.DictReader((RESULTS / "timings.tsv").open(encoding="utf-8"), delimiter="\t")
            if r["command"].split()[-2:] == command.split() and r["exit_status"] == "0"]
    line = next(l for l in (ROOT / "README.md").read_text(encoding="utf-8").splitlines() if l.startswith(f"| `{command}` |"))
    if not rows:
        assert "not measured" in line, f"README quotes a time for `{command}` that results/timings.tsv does not hold: {line}"
        return
    minutes = f"{int(rows[-1]['wall_s']) / 60:.0f} min"
    assert minutes in line and rows[-1]["cpu_model"] in line, \
        f"README's `{command}` row should quote {minutes} on {rows[-1]['cpu_model']} (results/timings.tsv): {line}"


STUDIES_MARKER = "<!-- numbers from results/studies/README.md, checked by tests/test_docs_numbers.py -->"


def test_numbers_quoted_from_the_studies_stand_in_its_generated_tables():
    """Every decimal number in a block marked as quoting results/studies/README.md appears there."""
    generated = (RESULTS / "studies" / "README.md").read_text(encoding="utf-8")
    found = re.findall(r"\d+\.\d+", generated)
    checked = 0
    for doc in DOCS:
        lines = doc.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if line.strip() != STUDIES_MARKER:
                continue
            for following in lines[i + 1:]:
                if not following.strip():
                    break
                for number in re.findall(r"(?<![\w.])\d+\.\d+(?![\d])", following):
                    checked += 1
                    assert number in found, f"{doc.name}: {number} is not in results/studies/README.md: {following}"
    assert checked >= 10


def _minutes_range(values) -> str:
    return f"{min(values):.1f}–{max(values):.1f} min"


def test_the_readme_studies_row_quotes_the_points_own_records():
    """The README's `dvc repro studies/dvc.yaml` row: training minutes per budget, decoding minutes, the CPUs and
    the count of points run, each as the points' committed records (results/studies/*/<point>.json) give them."""
    studies = RESULTS / "studies"
    points = sorted(p.stem for p in (studies / "train").glob("*.json"))
    train = {p: json.loads((studies / "train" / f"{p}.json").read_text(encoding="utf-8")) for p in points}
    decoding = [sum(json.loads((studies / stage / f"{p}.json").read_text(encoding="utf-8"))["seconds"]
                    for stage in ("decode", "decode_dev", "diagnose")) / 60 for p in points]
    line = next(l for l in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
                if l.startswith("| `dvc repro studies/dvc.yaml` |"))
    for pairs in (80_000, 20_000):
        minutes = _minutes_range([t["train_minutes"] for t in train.values() if t["train_pairs"] == pairs])
        assert f"{pairs // 1000}k-pair points" in line and minutes in line, f"README should quote {minutes} for {pairs:,}-pair points: {line}"
    assert f"then {_minutes_range(decoding)} of decoding" in line, f"decoding: {_minutes_range(decoding)}: {line}"
    for cpu in {t["device_name"].split(",")[0] for t in train.values()}:
        assert cpu in line, f"README's studies row should name {cpu}: {line}"
    total = len(read_yaml(ROOT / "studies" / "params.yaml")["points"])
    assert f"{len(points)} of {total} points" in line, f"README should say {len(points)} of {total} points run: {line}"
