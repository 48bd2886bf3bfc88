"""End to end: the real dvc.yaml and stages in a fresh git+DVC repository over a tiny bundled corpus.

Only the data stages are reproduced (`dvc repro tokenize`), and params.yaml is the repository's
own with a few sizes overridden, so later stages and parameter sections do not break this test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, make_bundled, real_pairs
from vae.experiments import collect

BUNDLED_REL = "data/europarl-v7-fr-en-sample100k"
SMALL = {
    "download": {"source": "bundled", "bundled_dir": BUNDLED_REL},
    "prepare": {"train_size": 200, "dev_size": 30, "test_size": 30},
    "tokenize": {"vocab_size": 200},
}


def env(site_cache: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME"}}
    e["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), e.get("PATH", "")])
    e["DVC_NO_ANALYTICS"] = "1"
    e["DVC_SITE_CACHE_DIR"] = str(site_cache)
    e["PYTHONDONTWRITEBYTECODE"] = "1"
    e["GIT_CONFIG_NOSYSTEM"] = "1"
    e["COLUMNS"] = "200"
    return e


def sh(cwd: Path, *cmd: str, env_: dict, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env_, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def write_params(path: Path, overrides: dict) -> None:
    """The repository's params.yaml, with only the given keys replaced."""
    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    for section, values in overrides.items():
        params.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")


def ran(output: str) -> set[str]:
    """The stages that `dvc repro` says it ran."""
    return {stage for stage in ("download", "prepare", "tokenize") if f"Running stage '{stage}'" in output}


@pytest.fixture
def project(tmp_path) -> tuple[Path, dict]:
    root = tmp_path / "project"
    root.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("vae", "stages", "data/local"):
        shutil.copytree(REPO / name, root / name, ignore=ignore)
    shutil.copy2(REPO / "dvc.yaml", root / "dvc.yaml")
    (root / "studies").mkdir()
    shutil.copy2(REPO / "studies/dvc.yaml", root / "studies/dvc.yaml")
    shutil.copy2(REPO / "studies/params.yaml", root / "studies/params.yaml")
    shutil.copy2(REPO / "params.yaml", root / "params.yaml")
    (root / "results").mkdir()
    shutil.copy2(REPO / "results/experiments.json", root / "results/experiments.json")  # until `collect` writes it
    write_params(root / "params.yaml", SMALL)
    make_bundled(root / BUNDLED_REL, real_pairs(300), stem="europarl-v7.fr-en.sample100k")

    e = env(tmp_path / "dvc-site-cache")
    sh(root, "git", "init", "-q", env_=e)
    for key, value in (("user.name", "Pipeline Test"), ("user.email", "test@example.invalid"),
                       ("commit.gpgsign", "false")):
        sh(root, "git", "config", key, value, env_=e)
    sh(root, "dvc", "init", "-q", env_=e)
    sh(root, "dvc", "config", "core.analytics", "false", env_=e)
    sh(root, "dvc", "config", "core.check_update", "false", env_=e)
    sh(root, "git", "add", "-A", env_=e)
    sh(root, "git", "commit", "-q", "-m", "tiny pipeline", env_=e)
    return root, e


def test_dvc_repro_runs_data_stages_and_tracks_params(project):
    root, e = project

    first = sh(root, "dvc", "repro", "tokenize", env_=e)
    assert ran(first.stdout + first.stderr) == {"download", "prepare", "tokenize"}, first.stdout + first.stderr
    for rel in ("data/raw/src.txt", "data/raw/tgt.txt", "data/raw/manifest.json",
                *(f"data/prepared/{s}.{side}" for s in ("train", "dev", "test") for side in ("src", "tgt")),
                "data/tokenizer/src.model", "data/tokenizer/tgt.model",
                "data/encoded/train.pt", "data/encoded/dev.pt", "data/encoded/test.pt",
                "results/prepare.json", "results/tokenize.json", "dvc.lock"):
        assert (root / rel).is_file(), rel
    counts = json.loads((root / "results/prepare.json").read_text())
    assert counts["input"] == 300
    assert (counts["train"], counts["dev"], counts["test"]) == (200, 30, 30)
    assert len((root / "data/prepared/train.src").read_text(encoding="utf-8").splitlines()) == 200
    manifest = json.loads((root / "data/raw/manifest.json").read_text())
    assert manifest["source"] == "bundled"
    first_vocab = json.loads((root / "results/tokenize.json").read_text())["vocab_size"]
    assert first_vocab["src"] == first_vocab["tgt"] > 4
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    assert {"download", "prepare", "tokenize"} <= set(lock["stages"])
    assert lock["stages"]["tokenize"]["params"]["params.yaml"]["tokenize"]["vocab_size"] == 200

    again = sh(root, "dvc", "repro", "tokenize", env_=e)
    assert "Running stage" not in again.stdout + again.stderr
    assert ran(again.stdout + again.stderr) == set()

    write_params(root / "params.yaml", {"tokenize": {"vocab_size": 160}})
    diff = sh(root, "dvc", "params", "diff", env_=e)
    assert "tokenize.vocab_size" in diff.stdout
    row = next(line for line in diff.stdout.splitlines() if "tokenize.vocab_size" in line)
    assert "200" in row and "160" in row
    assert "prepare." not in diff.stdout and "download." not in diff.stdout

    changed = sh(root, "dvc", "repro", "tokenize", env_=e)
    assert ran(changed.stdout + changed.stderr) == {"tokenize"}, changed.stdout + changed.stderr
    vocab = json.loads((root / "results/tokenize.json").read_text())["vocab_size"]
    assert vocab["src"] <= 160 < first_vocab["src"]
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    assert lock["stages"]["tokenize"]["params"]["params.yaml"]["tokenize"]["vocab_size"] == 160


TINY_MODEL = {
    "model": {"embedding_dim": 16, "hidden_size": 16, "z_dim": 4, "dropout": 0.0},
    # Pinned rather than inherited, so that the regression values do not move with params.yaml's scale.
    "train": {"epochs": 2, "max_tokens": 600, "device": "cpu", "precision": "fp32", "learning_rate": 0.001, "log_every": 5,
              "label_smoothing": 0.0, "weight_average": 0.0,
              "kl": {"schedule": "linear", "max_weight": 0.05, "warmup_steps": 5000, "cycle_steps": 10000, "ratio": 0.5}},
    "decode": {"max_sentences": 20, "beam_size": 2, "device": "cpu", "precision": "fp32"},
    "evaluate": {"bootstrap_samples": 50},
    "diagnose": {"max_sentences": 20, "samples": 2, "sample_sentences": 5},
}
TINY_POINTS = {  # the studies pipeline at the tiny configuration: a seed and a point of the price curve
    "seed2-gumbel": {"study": "seeds", "variant": "gumbel", "set": {"train.seed": 2}},
    "curve-gaussian-b-g5e-3": {"study": "price_curve", "variant": "gaussian",
                               "set": {"variants.gaussian.gamma_a": 0.005, "variants.gaussian.attention_kl_price": 0.05,
                                       "train.epochs": 1}},
}


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def test_full_pipeline_trains_decodes_and_reruns_only_what_changed(project):
    """Every stage of dvc.yaml on a tiny corpus and model: the table appears, a second repro is a
    no-op, and changing one variant's parameter re-runs only that variant's stages and the table."""
    root, e = project
    write_params(root / "params.yaml", TINY_MODEL)
    variants = list(yaml.safe_load((root / "params.yaml").read_text())["variants"])

    first = sh(root, "dvc", "repro", env_=e)
    expected = {"download", "prepare", "tokenize", "figures", "evaluate", "report"} | {
        f"{s}@{v}" for s in ("train", "decode", "diagnose") for v in variants}
    assert stages_run(first.stdout + first.stderr) == expected, first.stdout + first.stderr
    metrics = json.loads((root / "results/metrics.json").read_text())
    assert set(metrics["variants"]) == set(variants)
    for name, score in metrics["variants"].items():
        assert score["bleu_signature"].startswith("nrefs:1|"), name
        assert 0.0 <= score["bleu"] <= 100.0
        assert score["train"]["epochs"] == 2
        assert (root / f"checkpoints/{name}/last.pt").is_file()
        assert len((root / f"results/decode/{name}.txt").read_text(encoding="utf-8").splitlines()) == 20
    check_regression(root)
    table = (root / "results/RESULTS.md").read_text()
    assert "`gumbel`" in table and "BLEU signature" in table and "22.5" in table
    report = (root / "results/REPORT.md").read_text(encoding="utf-8")
    for section in ("## Configuration", "## Translation quality", "BLEU signature", "# Latent traversals",
                    "figures/z_pca.png", "## The studies", "results/seeds.json is absent", "## Repeated runs"):
        assert section in report, section
    for name in variants:  # DVCLive's step curves: every train.log_every steps, and the dev terms per epoch
        steps = (root / f"results/train/{name}/plots/metrics/train/loss.tsv").read_text().splitlines()
        assert steps[0].split("\t") == ["step", "loss"] and len(steps) > 2, name
        dev = (root / f"results/train/{name}/plots/metrics/dev/nll.tsv").read_text().splitlines()
        assert len(dev) == 1 + 2, name  # two epochs
        summary = json.loads((root / f"results/train/{name}/metrics.json").read_text())
        assert set(summary) == {"step", "epoch", "train", "dev"} and set(summary["train"]) == {"loss"}, name
    traversal = (root / "results/figures/z_traversal.md").read_text(encoding="utf-8")
    with_z = [v for v, c in yaml.safe_load((root / "params.yaml").read_text())["variants"].items() if c.get("latent_z", True)]
    assert traversal.count("| z") == 3 * len(with_z)

    again = sh(root, "dvc", "repro", env_=e)
    assert stages_run(again.stdout + again.stderr) == set(), again.stdout

    # The studies pipeline: each point through the same train / decode / diagnose stages, then the tables.
    (root / "studies/params.yaml").write_text(yaml.safe_dump({"points": TINY_POINTS}), encoding="utf-8")
    studied = sh(root, "dvc", "repro", "studies/dvc.yaml", env_=e)
    assert stages_run(studied.stdout + studied.stderr) == {
        f"studies/dvc.yaml:{stage}@{point}" for stage in ("train", "decode", "decode_dev", "diagnose")
        for point in TINY_POINTS} | {"studies/dvc.yaml:studies"}, studied.stdout + studied.stderr
    seeds = json.loads((root / "results/seeds.json").read_text())
    assert seeds["gumbel"]["seeds"] == [1, 2] and len(seeds["gumbel"]["dnll_a_prior"]) == 2
    assert seeds["gumbel"]["test_bleu"][0] == metrics["variants"]["gumbel"]["bleu"]  # seed 1 is the root run's
    curve = json.loads((root / "results/price_curve.json").read_text())
    point = next(p for p in curve["points"] if p["name"] == "curve-gaussian-b-g5e-3")
    assert (point["gamma_a"], point["attention_kl_price"], point["epochs"]) == (0.005, 0.05, 1)
    assert point["sigma_mean"] > 0 and point["dev_bleu"] is not None and "deterministic" in curve["references"]
    readme = (root / "results/studies/README.md").read_text(encoding="utf-8")
    assert "## Seeds" in readme and "| `gumbel` | 1, 2 |" in readme and "## The price curve" in readme
    assert "(ii) `gumbel` keeps z in use beside a live a: **" in readme  # seed 2 lacks the others: seed 1 judges
    assert (root / "results/studies/price_curve.png").stat().st_size > 1000
    from_point = subprocess.run([sys.executable, "-m", "stages.translate", "--point", "seed2-gumbel", "--models",
                                 "studies/models"], cwd=root, env=e, input="Bonjour.\n", capture_output=True,
                                text=True, timeout=120)
    assert from_point.returncode == 0 and from_point.stdout.strip(), from_point.stderr
    reported = sh(root, "dvc", "repro", "-f", "-s", "report", env_=e)  # the report reads the studies' files when present
    assert "results/seeds.json is absent" not in (root / "results/REPORT.md").read_text(encoding="utf-8")
    assert stages_run(reported.stdout + reported.stderr) == {"report"}

    lines = "Bonjour à tous.\n\n" + "très " * 300 + "long.\n"
    translated = subprocess.run([sys.executable, "-m", "stages.translate", "--variant", "gumbel", "--samples", "2"],
                                cwd=root, env=e, input=lines, capture_output=True, text=True, timeout=120)
    assert translated.returncode == 0, translated.stderr
    rows = translated.stdout.split("\n")[:-1]
    assert len(rows) == 3 and all(len(r.split("\t")) == 2 for r in rows) and rows[1] == "\t"
    assert "line 2 is empty" in translated.stderr and "line 3 has" in translated.stderr

    write_params(root / "params.yaml", {"variants": {**yaml.safe_load((root / "params.yaml").read_text())["variants"],
                                                     "gumbel": {"attention": "gumbel", "gumbel_tau0": 0.5}}})
    changed = sh(root, "dvc", "repro", env_=e)
    assert stages_run(changed.stdout + changed.stderr) == {"train@gumbel", "decode@gumbel", "diagnose@gumbel",
                                                           "figures", "evaluate", "report"}, changed.stdout
    for figure in ("attention_maps", "attention_entropy", "z_kl_per_dimension", "z_pca", "sigma_a_gaussian"):
        assert (root / f"results/figures/{figure}.png").stat().st_size > 1000, figure
    plots = sh(root, "dvc", "plots", "show", "--json", env_=e)
    assert "dev NLL per token" in plots.stdout
    shown = sh(root, "dvc", "metrics", "show", env_=e)
    assert "results/headline/gumbel.json" in shown.stdout and "results/metrics.json" not in shown.stdout
    assert max(map(len, shown.stdout.splitlines())) <= 200, shown.stdout  # readable in a terminal

    # A shared cache: push from this clone, pull into a fresh one, where nothing needs to run again.
    sh(root, "dvc", "remote", "add", "-d", "shared", str(root.parent / "remote"), env_=e)
    sh(root, "git", "add", "-A", env_=e)
    sh(root, "git", "commit", "-q", "-m", "trained", env_=e)
    sh(root, "dvc", "push", env_=e)
    clone = root.parent / "clone"
    sh(root.parent, "git", "clone", "-q", str(root), str(clone), env_=e)
    sh(clone, "dvc", "pull", env_=e)
    assert (clone / "checkpoints/gumbel/last.pt").is_file() and (clone / "models/gumbel.pt").is_file()
    second = sh(clone, "dvc", "repro", env_=e)
    assert stages_run(second.stdout + second.stderr) == set(), second.stdout


# The CI regression check: what the tiny configuration above must keep reaching. Regenerate with
# `REGRESSION_UPDATE=1 make test` after a deliberate change, and say why in the commit.
EXPECTED = Path(__file__).with_name("expected_tiny_metrics.json")
# Relative tolerances: the dev NLL within 2 %, a KL within 30 % (the tiny run's KLs are 0.003–0.06 nats per
# token, so an absolute tolerance would let a collapse to 0 pass); never tighter than 0.002 nats.
RELATIVE = {"dev_nll_per_token": 0.02, "dev_kl_z_per_token": 0.3, "dev_kl_a_per_token": 0.3}
FLOOR = 0.002


def regression_report(actual: dict, expected: dict) -> list[str]:
    """One readable line per metric that moved beyond its tolerance (worse or better); a KL expected
    alive that fell below a tenth of its value is called a collapse."""
    problems = []
    for variant, metrics in expected.items():
        for key, want in metrics.items():
            got = actual.get(variant, {}).get(key)
            allowed = max(RELATIVE[key] * abs(want), FLOOR)
            if got is None or abs(got - want) > allowed:
                collapsed = got is not None and key != "dev_nll_per_token" and want > FLOOR and got < 0.1 * want
                problems.append(f"{variant}.{key}: expected {want:.4f} ± {allowed:.4f}, got {got}"
                                + (" (collapsed)" if collapsed else ""))
    return problems


def check_regression(root: Path) -> None:
    actual = {path.stem: {k: json.loads(path.read_text())[k] for k in RELATIVE}
              for path in sorted((root / "results/train").glob("*.json"))}
    if os.environ.get("REGRESSION_UPDATE"):
        EXPECTED.write_text(json.dumps(actual, indent=2) + "\n")
    expected = json.loads(EXPECTED.read_text())
    assert set(expected) == set(actual), f"the regression file covers {sorted(expected)}, the run {sorted(actual)}"
    problems = regression_report(actual, expected)
    assert not problems, "tiny-config metrics moved:\n" + "\n".join(problems)


def test_regression_report_names_what_moved():
    expected = {"gumbel": {"dev_nll_per_token": 5.0, "dev_kl_z_per_token": 0.01, "dev_kl_a_per_token": 0.05}}
    assert regression_report({"gumbel": dict(expected["gumbel"])}, expected) == []
    moved = regression_report({"gumbel": {**expected["gumbel"], "dev_nll_per_token": 5.2}}, expected)
    assert moved == ["gumbel.dev_nll_per_token: expected 5.0000 ± 0.1000, got 5.2"]
    collapsed = regression_report({"gumbel": {**expected["gumbel"], "dev_kl_a_per_token": 0.001}}, expected)
    assert collapsed == ["gumbel.dev_kl_a_per_token: expected 0.0500 ± 0.0150, got 0.001 (collapsed)"]
    assert regression_report({}, expected)  # a variant that vanished is a regression too


def test_queued_experiments_run_in_parallel_and_are_collected(project):
    """Two seeds queued with `dvc exp run --queue` and run by two queue workers, one of them as two
    data-parallel ranks (train.processes=2); `collect` turns `dvc exp show --json` into mean ± std."""
    root, e = project
    write_params(root / "params.yaml", TINY_MODEL)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["variants"] = {k: params["variants"][k] for k in ("none", "gumbel")}
    params["evaluate"]["baselines"] = ["none"]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")
    sh(root, "git", "commit", "-q", "-am", "two variants", env_=e)
    # The data stages once, committed: two workers that both run `download` at the same moment race on
    # DVC's run cache (a temporary file one of them renames away); the experiments share this data.
    sh(root, "dvc", "repro", "tokenize", env_=e)
    sh(root, "git", "add", "-A", env_=e)
    sh(root, "git", "commit", "-q", "-m", "data", env_=e)

    sh(root, "dvc", "exp", "run", "--queue", "-S", "train.seed=2", "-n", "seed-2", env_=e)
    sh(root, "dvc", "exp", "run", "--queue", "-S", "train.seed=3", "-S", "train.processes=2", "-n", "seed-3", env_=e)
    sh(root, "dvc", "queue", "start", "--jobs", "2", env_=e)
    try:
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            status = sh(root, "dvc", "queue", "status", env_=e).stdout
            if not re.search(r"\b(Queued|Running)\b", status):
                break
            time.sleep(3)
        assert status.count("Success") == 2, status + sh(root, "dvc", "queue", "logs", "seed-3", env_=e, check=False).stdout
    finally:
        sh(root, "dvc", "queue", "stop", "--kill", env_=e, check=False)

    show = sh(root, "dvc", "exp", "show", "--json", env_=e).stdout
    runs = {r["name"]: r for r in collect(json.loads(show))["runs"]}
    assert {"seed-2", "seed-3"} <= set(runs)
    assert runs["seed-2"]["params"]["train.seed"] == 2 and runs["seed-3"]["params"]["train.processes"] == 2
    headline = {name: _exp_metrics(json.loads(show), name)["results/headline/gumbel.json"]["data"] for name in runs}
    assert headline["seed-2"] != headline["seed-3"]  # two seeds, two results

    collected = subprocess.run([sys.executable, "-m", "stages.collect"], cwd=root, env=e, input=show,
                               capture_output=True, text=True, timeout=60)
    assert collected.returncode == 0, collected.stderr
    groups = json.loads((root / "results/experiments.json").read_text())["groups"]
    assert [g["seeds"] for g in groups] == [[2, 3]]  # processes is not a setting: the same experiment
    assert groups[0]["bleu"]["gumbel"]["n"] == 2


def _exp_metrics(exp_show: list[dict], name: str) -> dict:
    for entry in exp_show:
        for exp in entry.get("experiments") or []:
            if exp["name"] == name:
                return exp["revs"][0]["data"]["metrics"]
    raise KeyError(name)
