"""vae.live: DVCLive's files, and a resumed run that continues them without repeating a step."""

import json

from vae.live import log, open_log


def rows(directory, name="train/loss"):
    return (directory / "plots" / "metrics" / f"{name}.tsv").read_text().splitlines()


def test_a_fresh_log_writes_histories_and_a_summary(tmp_path):
    live = open_log(tmp_path, 0)
    for step in (25, 50):
        log(live, step, {"train/loss": step / 100, "train/kl_z": 0.1})
    assert rows(tmp_path) == ["step\tloss", "25\t0.25", "50\t0.5"]
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["step"] == 50 and summary["train"]["loss"] == 0.5
    open_log(tmp_path, 0)  # a run that starts afresh starts a fresh log
    assert not (tmp_path / "plots" / "metrics" / "train" / "loss.tsv").exists()


def test_a_resumed_run_forgets_the_steps_after_its_checkpoint(tmp_path):
    live = open_log(tmp_path, 0)
    for step in (25, 50, 75):  # the checkpoint was written after step 50; step 75 was lost with the kill
        log(live, step, {"train/loss": step / 100})
    resumed = open_log(tmp_path, 50)
    log(resumed, 75, {"train/loss": 0.7})
    assert rows(tmp_path) == ["step\tloss", "25\t0.25", "50\t0.5", "75\t0.7"]


def test_the_summary_keeps_a_few_values_and_the_histories_keep_all(tmp_path):
    live = open_log(tmp_path, 0)
    log(live, 25, {"train/loss": 5.0, "train/grad_norm": 3.0, "train/tokens_per_s": 9000.0})
    log(live, 50, {"dev/nll": 4.0, "dev/ppl": 54.6, "epoch": 1})
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary == {"train": {"loss": 5.0}, "dev": {"nll": 4.0}, "epoch": 1, "step": 50}
    assert rows(tmp_path, "train/grad_norm") == ["step\tgrad_norm", "25\t3.0"]
