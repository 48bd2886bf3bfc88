"""benchmarks/train_throughput.py: the script loads (its helpers come from time_to_bleu), and the committed
results/train_throughput.json holds, for every variant measured, the figures the time-to-BLEU issue asks for."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import train_throughput  # noqa: E402

KEYS = {"ratio_to_bare", "tokens_per_s", "bare_tokens_per_s", "cpu_model", "precision", "rounds"}


def test_the_cpu_label_is_the_model_alone():
    name = train_throughput.cpu_name()
    assert name and "threads" not in name


def test_the_committed_ratios_say_what_they_were_measured_with():
    results = json.loads((ROOT / "results" / "train_throughput.json").read_text())
    assert results, "no variant measured"
    for variant, figures in results.items():
        assert set(figures) == KEYS, variant
        assert abs(figures["ratio_to_bare"] - figures["tokens_per_s"] / figures["bare_tokens_per_s"]) < 0.25, variant
        assert figures["precision"] in {"fp32", "bf16"} and figures["rounds"] >= 5, variant
