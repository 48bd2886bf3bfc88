"""benchmarks/time_to_bleu.py: the plot's choice of each variant's best configuration, and the plot itself."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import time_to_bleu  # noqa: E402


def point(variant, config, minutes, dev, test=None):
    return {"variant": variant, "config": config, "train_minutes": minutes, "dev_bleu": dev, "test_bleu": test,
            "machine": "CPU AMD EPYC, 2 threads, bf16"}


POINTS = [point("plain", "slow", 4, 10.0), point("plain", "slow", 16, 20.0, 21.0),
          point("plain", "fast", 4, 12.0), point("plain", "fast", 12, 22.0, 23.5),
          point("gaussian", "only-dev", 8, 3.0)]


def test_best_configuration_is_the_highest_test_bleu_and_falls_back_to_an_untested_one():
    assert time_to_bleu.best_configurations(POINTS) == {"plain": ("plain", "fast"),
                                                        "gaussian": ("gaussian", "only-dev")}


def test_plot_writes_a_png_beside_the_json(tmp_path):
    path = tmp_path / "time_to_bleu.json"
    path.write_text(json.dumps({"points": POINTS, "peer": time_to_bleu.JOEYNMT}))
    time_to_bleu.plot(path)
    assert (tmp_path / "time_to_bleu.png").stat().st_size > 10_000
