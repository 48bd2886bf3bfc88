"""Bad inputs to the stages that train and use models, and to `translate`: each ends in one clear
line and exit 1, never a traceback, and leaves the previous good outputs as they were.

The data stages' battery is tests/test_bad_inputs.py; this one starts from a workspace that has
been through download, prepare, tokenize and one tiny training of `deterministic`.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, cli_env, make_bundled, real_pairs, run_stage
from vae.config import TokenizeConfig
from vae.tokenizer import Tokenizers, write_models

TINY = {
    "prepare": {"train_size": 200, "dev_size": 20, "test_size": 30},
    "tokenize": {"vocab_size": 200},
    "model": {"embedding_dim": 16, "hidden_size": 16, "z_dim": 8},
    "train": {"epochs": 1, "max_tokens": 400, "device": "cpu", "precision": "fp32"},
    "decode": {"max_sentences": 10, "beam_size": 2},
    "diagnose": {"max_sentences": 10, "sample_sentences": 5, "samples": 2},
}


def write_params(path: Path, sections: dict) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    for section, values in sections.items():
        params.setdefault(section, {}).update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def digest(root: Path) -> dict[str, str]:
    """Every file under the workspace's outputs, by content."""
    out = {}
    for top in ("models", "checkpoints", "results", "data/encoded", "data/tokenizer"):
        for path in sorted((root / top).rglob("*")):
            if path.is_file():
                out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad-model-inputs")
    make_bundled(root / "data/europarl-v7-fr-en-sample100k", real_pairs(300), stem="europarl-v7.fr-en.sample100k")
    write_params(root / "params.yaml", TINY)
    for args in (["download"], ["prepare"], ["tokenize"], ["train", "--variant", "deterministic"],
                 ["decode", "--variant", "deterministic"]):
        result = run_stage(*args, cwd=root)
        assert result.returncode == 0, result.stderr
    # the broken copies that some cases point at, beside the good ones
    (root / "broken/truncated").mkdir(parents=True)
    good = (root / "models/deterministic.pt").read_bytes()
    (root / "broken/truncated/deterministic.pt").write_bytes(good[: len(good) // 3])
    (root / "broken/empty").mkdir()
    shutil.copytree(root / "data/tokenizer", root / "broken/data/tokenizer")
    shutil.copytree(root / "data/encoded", root / "broken/data/encoded")
    (root / "broken/data/tokenizer/tgt.model").write_bytes(b"not a sentencepiece model")
    # one bit of a weight flipped, as in a corrupted DVC cache object: torch reads it without a word
    (root / "broken/flipped").mkdir()
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x04  # the file is almost all weights
    (root / "broken/flipped/deterministic.pt").write_bytes(bytes(flipped))
    # a tokenizer of the same size, trained on other sentences
    other = root / "broken/other-data"
    write_models(real_pairs(600)[300:], TokenizeConfig(vocab_size=200), other / "tokenizer")
    shutil.copytree(root / "data/encoded", other / "encoded")
    sizes = [Tokenizers.load(folder).tgt.get_piece_size() for folder in (root / "data/tokenizer", other / "tokenizer")]
    assert sizes[0] == sizes[1], sizes
    return root


def params_case(sections: dict):
    def make(root: Path) -> list[str]:
        return ["--params", str(write_params(root / "case-params.yaml", TINY | sections))]
    return make


def only_deterministic(root: Path) -> list[str]:
    """--params for a project whose one variant is the trained `deterministic` (figures loads them all)."""
    path = write_params(root / "only-deterministic.yaml", TINY)
    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    params["variants"] = {"deterministic": params["variants"]["deterministic"]}
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return ["--params", str(path)]


def args_case(*args: str):
    return lambda root: list(args)


# (case, stage, extra arguments made from the workspace, stdin bytes or None, what the message says)
CASES = [
    ("train-unknown-variant", "train", args_case("--variant", "gumbell"), None, r"no variant 'gumbell'"),
    ("train-absent-device", "train", params_case({"train": TINY["train"] | {"device": "cuda:7"}}), None,
     r"device 'cuda:7' is not available on this machine; use device: auto or cpu"),
    ("train-learning-rate-a-string", "train", params_case({"train": TINY["train"] | {"learning_rate": "fast"}}), None,
     r"'train\.learning_rate' must be a finite number, got 'fast'"),
    ("train-no-encoded-data", "train", lambda root: ["--variant", "deterministic", "--data", str(root / "nowhere")], None,
     r"nowhere/encoded/train\.pt: no such encoded split; run the tokenize stage first"),
    ("train-negative-time-budget", "train", params_case({"train": TINY["train"] | {"max_minutes": -1}}), None,
     r"'train\.max_minutes' must be >= 0"),
    ("train-unknown-point", "train", lambda root: ["--point", "tau-9", "--points", str(REPO / "studies/params.yaml")],
     None, r"no point 'tau-9' in .*studies/params\.yaml \(points: seed2-plain, "),
    ("evaluate-before-decode", "evaluate", args_case(), None, r"results/decode/encdec\.txt: no such file; decode first \(dvc repro decode@encdec decode@plain"),
    ("tokenize-vocabulary-too-small", "tokenize", params_case({"tokenize": {"vocab_size": 20}}), None,
     r"'tokenize\.vocab_size' 20 is too small for this corpus: its characters alone need \d+ pieces"),
    ("figures-no-models", "figures", lambda root: ["--models", str(root / "broken/empty")], None,
     r"broken/empty/\w+\.pt: no such model"),
    ("report-before-evaluate", "report", args_case(), None, r"results/metrics\.json: no such file; run the evaluate stage first \(dvc repro evaluate\)"),
    ("collect-not-json", "collect", args_case(), b"{not json", r"JSON"),
    ("decode-no-model", "decode", lambda root: ["--variant", "deterministic", "--models", str(root / "broken/empty")],
     None, r"deterministic\.pt"),
    ("decode-truncated-model", "decode",
     lambda root: ["--variant", "deterministic", "--models", str(root / "broken/truncated")], None,
     r"deterministic\.pt.*(damaged|truncated|corrupt|not a)"),
    ("decode-damaged-model", "decode",
     lambda root: ["--variant", "deterministic", "--models", str(root / "broken/flipped")], None,
     r"broken/flipped/deterministic\.pt is damaged: its weights do not match the sha256 stored with them"),
    ("decode-tokenizer-from-other-data", "decode",
     lambda root: ["--variant", "deterministic", "--data", str(root / "broken/other-data")], None,
     r"models/deterministic\.pt was trained with another tokenizer than the one in .*broken/other-data/tokenizer"),
    ("decode-beam-zero", "decode", params_case({"decode": TINY["decode"] | {"beam_size": 0}}), None,
     r"'decode\.beam_size' must be >= 1, got 0"),
    ("diagnose-no-model", "diagnose", lambda root: ["--variant", "deterministic", "--models", str(root / "broken/empty")],
     None, r"deterministic\.pt"),
    ("translate-invalid-utf8", "translate", args_case("--variant", "deterministic"), b"bonjour\n\xe9t\xe9\n",
     r"stdin, line 2: not valid UTF-8"),
    ("translate-unknown-variant", "translate", args_case("--variant", "gausian"), b"bonjour\n", r"no variant 'gausian'"),
    ("translate-negative-samples", "translate", args_case("--variant", "deterministic", "--samples", "-3"), b"bonjour\n",
     r"--samples must be 0"),
    ("translate-zero-subwords", "translate", args_case("--variant", "deterministic", "--max-subwords", "0"),
     b"bonjour\n", r"--max-subwords must be at least 1"),
    ("translate-truncated-model", "translate",
     lambda root: ["--variant", "deterministic", "--models", str(root / "broken/truncated")], b"bonjour\n",
     r"deterministic\.pt"),
    ("translate-tokenizer-from-other-data", "translate",
     lambda root: ["--variant", "deterministic", "--data", str(root / "broken/other-data")], b"bonjour\n",
     r"models/deterministic\.pt was trained with another tokenizer than the one in .*broken/other-data/tokenizer"),
    ("diagnose-tokenizer-from-other-data", "diagnose", lambda root: ["--data", str(root / "broken/other-data")],
     None, r"trained with another tokenizer than the one in .*broken/other-data/tokenizer"),
    ("figures-tokenizer-from-other-data", "figures",
     lambda root: [*only_deterministic(root), "--data", str(root / "broken/other-data")], None,
     r"trained with another tokenizer than the one in .*broken/other-data/tokenizer"),
    ("translate-broken-tokenizer", "translate",
     lambda root: ["--variant", "deterministic", "--data", str(root / "broken/data")], b"bonjour\n", r"tgt\.model"),
]


@pytest.mark.parametrize("case, stage, make_args, stdin, expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_to_a_model_stage_is_one_clear_line(ws, case, stage, make_args, stdin, expected):
    before = digest(ws)
    args = make_args(ws)
    if stage in ("train", "decode", "diagnose") and "--variant" not in args and "--point" not in args:
        args = ["--variant", "deterministic", *args]
    env = cli_env()
    env.pop("VAE_TRACEBACK", None)
    result = subprocess.run([sys.executable, "-m", f"stages.{stage}", *args], cwd=ws, env=env, input=stdin,
                            capture_output=True, timeout=120)
    stderr = result.stderr.decode("utf-8", "replace")
    assert result.returncode == 1, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert re.search(expected, lines[0]), lines[0]
    assert digest(ws) == before  # nothing partial written, the good outputs intact


def test_a_crafted_model_runs_no_code_and_is_one_line(ws):
    marker = ws / "broken" / "marker"

    class RunsCode:
        def __reduce__(self):
            return exec, (f"open({str(marker)!r}, 'w').write('ran')",)

    (ws / "broken/crafted").mkdir(exist_ok=True)
    import torch
    torch.save({"setup": RunsCode(), "model": {}}, ws / "broken/crafted/deterministic.pt")
    result = run_stage("decode", "--variant", "deterministic", "--models", str(ws / "broken/crafted"),
                       "--out", str(ws / "broken/crafted-out"), cwd=ws)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert re.search(r"deterministic\.pt holds Python objects besides tensors and plain data .* so it was not "
                     r"loaded; re-train it", lines[0]), lines[0]
    assert not marker.exists()


def test_diagnose_on_one_sentence_reports_active_units_as_not_measurable(ws):
    # the variance over one sentence is NaN: it read as "active_units 0", with PyTorch's warning leaking
    params = write_params(ws / "one-sentence.yaml", TINY | {"diagnose": TINY["diagnose"] | {"max_sentences": 1}})
    result = run_stage("diagnose", "--variant", "deterministic", "--params", str(params),
                       "--out", str(ws / "broken/one-sentence"), cwd=ws)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr and "warn" not in result.stderr.lower(), result.stderr
    out = json.loads((ws / "broken/one-sentence/deterministic.json").read_text())
    assert out["sentences"] == 1 and out["active_units"] is None
