"""benchmarks/time_to_bleu.py: every recorded point says what it was measured with, the plot's choice of
each variant's best configuration, the peer read from a file (none hard-coded), and the plot itself."""

import json
import re
import sys
from pathlib import Path

import torch

from vae.config import DecodeConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import time_to_bleu  # noqa: E402


def point(variant, config, minutes, dev, test=None):
    return {"variant": variant, "config": config, "train_minutes": minutes, "dev_bleu": dev, "test_bleu": test,
            "machine": "CPU AMD EPYC, 2 threads, bf16", "beam": {"dev_bleu": 1, "test_bleu": 5},
            "max_len": {"max_length_ratio": 1.5, "max_length_slack": 10},
            "precision": {"train": "bf16", "decode": "bf16"}, "cpu_model": "AMD EPYC", "torch": "2.13.0",
            "commit": "0123abc"}


POINTS = [point("plain", "slow", 4, 10.0), point("plain", "slow", 16, 20.0, 21.0),
          point("plain", "fast", 4, 12.0), point("plain", "fast", 12, 22.0, 23.5),
          point("gaussian", "only-dev", 8, 3.0)]


def test_every_committed_point_records_what_it_was_measured_with():
    results = json.loads((ROOT / "results" / "time_to_bleu.json").read_text())
    records = results["points"] + ([results["decode"]] if results.get("decode") else [])
    missing = [f"{q.get('variant', 'decode')}/{q.get('config', q.get('model'))}: "
               f"{[k for k in time_to_bleu.PROVENANCE if q.get(k) in (None, '', {})]}"
               for q in records if any(q.get(k) in (None, "", {}) for k in time_to_bleu.PROVENANCE)]
    assert not missing, "points without their beam, length cap, precision, CPU, torch or commit:\n" + "\n".join(missing)
    assert "peer" not in results, "a peer's figures belong in its own file (results/*joeynmt*/), with its config"


def test_provenance_names_the_beam_length_cap_precision_cpu_torch_and_commit():
    decode = DecodeConfig(max_length_ratio=2.0, max_length_slack=7)
    record = time_to_bleu.provenance({"dev_bleu": 1, "test_bleu": 5}, decode, {"train": "bf16", "decode": "fp32"})
    assert set(record) == set(time_to_bleu.PROVENANCE)
    assert record["beam"] == {"dev_bleu": 1, "test_bleu": 5}
    assert record["max_len"] == {"max_length_ratio": 2.0, "max_length_slack": 7}
    assert record["precision"] == {"train": "bf16", "decode": "fp32"}
    assert record["torch"] == torch.__version__
    assert record["cpu_model"] and "threads" not in record["cpu_model"]
    assert re.fullmatch(r"[0-9a-f]{7,}(-dirty)?", record["commit"]), record["commit"]


def test_best_configuration_is_the_highest_test_bleu_and_falls_back_to_an_untested_one():
    assert time_to_bleu.best_configurations(POINTS) == {"plain": ("plain", "fast"),
                                                        "gaussian": ("gaussian", "only-dev")}


def test_the_peer_comes_from_a_joeynmt_file_and_is_absent_without_one(tmp_path):
    assert time_to_bleu.peers(tmp_path) == []
    peer = {"label": "JoeyNMT RNN (config in results/joeynmt/)",
            "points": [{"train_minutes": 40, "bleu": 20.0, "split": "test", "beam": 5}]}
    (tmp_path / "joeynmt").mkdir()
    (tmp_path / "joeynmt" / "rnn.json").write_text(json.dumps(peer))
    assert time_to_bleu.peers(tmp_path) == [peer]


def test_plot_writes_a_png_beside_the_json_with_and_without_points_and_peer(tmp_path):
    path = tmp_path / "time_to_bleu.json"
    for points, peer in ((POINTS, False), ([], False), (POINTS, True)):
        if peer:
            (tmp_path / "joeynmt").mkdir()
            (tmp_path / "joeynmt" / "rnn.json").write_text(json.dumps(
                {"label": "JoeyNMT", "points": [{"train_minutes": 40, "bleu": 20.0, "split": "dev", "beam": 1}]}))
        path.write_text(json.dumps({"points": points, "decode": None}))
        (tmp_path / "time_to_bleu.png").unlink(missing_ok=True)
        time_to_bleu.plot(path)
        assert (tmp_path / "time_to_bleu.png").stat().st_size > 10_000


def test_the_time_to_bleu_figures_in_the_docs_are_the_committed_points():
    """Every two-decimal BLEU in results/README.md's marked time-to-BLEU block is a dev or test BLEU of a
    point in time_to_bleu.json or of a peer under results/*joeynmt*/ (or a difference of two of them)."""
    marker = "<!-- checked against time_to_bleu.json and joeynmt/ by tests/test_time_to_bleu.py -->"
    text = (ROOT / "results" / "README.md").read_text(encoding="utf-8")
    assert marker in text
    block = text.split(marker, 1)[1].split("```", 1)[0]
    points = json.loads((ROOT / "results" / "time_to_bleu.json").read_text())["points"]
    scores = {q[k] for q in points for k in ("dev_bleu", "test_bleu") if q.get(k) is not None}
    for peer in time_to_bleu.peers(ROOT / "results"):
        scores |= {q["bleu"] for q in peer["points"]} | {peer.get("test_chrf")}
    scores |= {round(abs(a - b), 2) for a in scores for b in scores if a and b}
    epochs = {round(q["epochs"], 2) for q in points} | {p["epochs"] for p in time_to_bleu.peers(ROOT / "results")}
    minutes = {q["train_minutes"] for q in points} | {p["train_minutes"] for p in time_to_bleu.peers(ROOT / "results")}
    quoted = {float(x) for x in re.findall(r"(?<![\d.])(\d{1,2}\.\d\d)(?!\.?\d)", block)}
    assert quoted and not quoted - scores - epochs - minutes, quoted - scores - epochs - minutes
