"""benchmarks/joeynmt/peer.py: what it reads from JoeyNMT's log, and a result that time_to_bleu.py draws
with everything the measurement records (JoeyNMT itself is not run here: run.sh installs it)."""

import json
import os
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "joeynmt"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import peer  # noqa: E402
import time_to_bleu  # noqa: E402

LOG = """\
2026-12-02 05:44:01,000 - INFO - joeynmt.training - Train config:
2026-12-02 05:44:09,091 - INFO - joeynmt.training - EPOCH 1
2026-12-02 05:45:00,000 - INFO - joeynmt.training - Epoch   1, Step:      100, Batch Loss:   10.0, Batch Acc: 0.1
2026-12-02 05:46:00,000 - INFO - joeynmt.training - EPOCH 2
2026-12-02 05:48:09,091 - INFO - joeynmt.training - Interrupt at epoch 2, step 250.
2026-12-02 05:48:10,000 - INFO - joeynmt.training - Checkpoint saved in /tmp/x/model/250.ckpt.
"""


def test_training_record_reads_minutes_from_epoch_1_to_the_end_and_the_last_checkpoints_step():
    assert peer.training_record(LOG) == {"train_minutes": 4.0, "updates": 250, "epoch_reached": 2,
                                         "interrupted": True}
    ended = LOG.replace("Interrupt at epoch 2, step 250.", "Training ended after   2 epochs.")
    assert peer.training_record(ended)["interrupted"] is False


def test_the_record_is_time_to_bleus_peer_and_names_what_it_was_measured_with(tmp_path):
    trained = {"train_minutes": 16.0, "updates": 2500, "epoch_reached": 2, "interrupted": True}
    scores = {"bleu": 20.0, "bleu_signature": "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
              "chrf": 45.0}
    result = peer.record("rnn", {"joeynmt": "2.3.0", "torch": "2.13.0+cpu"}, trained,
                         scores | {"sentences": 500}, scores | {"sentences": 10000, "sentences_per_s": 9.5},
                         "results/joeynmt/rnn.yaml", 2, {"minutes": 16.0, "epochs": None}, 80000, 64)
    for key in ("system", "config", "train_minutes", "epochs", "updates", "dev_bleu", "test_bleu", "bleu_signature",
                "beam", "test_sentences", "cpu_model", "threads", "torch", "date", "commit"):
        assert result[key] not in (None, ""), key
    assert result["epochs"] == 2.0 and result["beam"] == 5
    assert [(q["split"], q["beam"]) for q in result["points"]] == [("dev", 1), ("test", 5)]
    (tmp_path / "joeynmt").mkdir()
    (tmp_path / "joeynmt" / "rnn.json").write_text(json.dumps(result))
    assert time_to_bleu.peers(tmp_path) == [result]
    (tmp_path / "time_to_bleu.json").write_text(json.dumps({"points": [], "decode": None}))
    time_to_bleu.plot(tmp_path / "time_to_bleu.json")
    assert (tmp_path / "time_to_bleu.png").stat().st_size > 10_000


def test_the_config_is_our_size_with_our_subwords_and_beam_5(tmp_path):
    cfg = peer.training_config(ROOT / "benchmarks" / "joeynmt" / "rnn.yaml", Path("data"), tmp_path, 3)
    model = cfg["model"]
    assert model["encoder"]["bidirectional"] and model["encoder"]["hidden_size"] == 256
    assert model["decoder"]["hidden_size"] == 256 and model["decoder"]["rnn_type"] == "lstm"
    assert model["encoder"]["embeddings"]["embedding_dim"] == model["decoder"]["embeddings"]["embedding_dim"] == 256
    assert cfg["testing"]["beam_size"] == 5 and cfg["training"]["epochs"] == 3
    assert cfg["data"]["src"]["tokenizer_cfg"]["model_file"] == "data/tokenizer/src.model"
    assert cfg["data"]["trg"]["tokenizer_cfg"]["model_file"] == "data/tokenizer/tgt.model"
    assert "set by peer.py" not in yaml.safe_dump(cfg)


FAKE_TRAINER = """\
import sys, time
log = open(sys.argv[1], "a")
log.write("2026-12-05 12:00:00,000 - INFO - joeynmt.training - EPOCH 1\\n"); log.flush()
try:
    deadline = time.monotonic() + 20  # without the interrupt, give up: peer.train then fails the test
    while time.monotonic() < deadline:
        time.sleep(0.05)
    sys.exit(3)
except KeyboardInterrupt:
    log.write("2026-12-05 12:00:01,000 - INFO - joeynmt.training - Interrupt at epoch 1, step 5.\\n")
"""


def test_the_budget_interrupts_training_even_from_a_background_job(tmp_path, monkeypatch):
    """A shell starts `nohup run.sh ... &` with SIGINT ignored, which the trainer would inherit (and train on
    past the budget, as session 15's first peer run did): peer.train must give it back its default."""
    import signal
    fake = tmp_path / "fake_joeynmt.py"
    fake.write_text(FAKE_TRAINER)
    (tmp_path / "model").mkdir()
    log = tmp_path / "model" / "train.log"
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a background job starts
    try:
        # the fake takes the log path where JoeyNMT takes "train"; the config and --skip-test follow unused
        sent = peer.train([sys.executable, str(fake), str(log)], tmp_path / "config.yaml", log, 0.005, dict(os.environ))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert sent is not None and sent < 0.2
    assert "Interrupt at epoch 1" in log.read_text()
