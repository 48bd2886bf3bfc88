#!/usr/bin/env bash
# The peer, reproducible: install JoeyNMT into its own virtual environment (.venv-joeynmt, git-ignored)
# from the package registry, then train, decode and score it with benchmarks/joeynmt/peer.py, which
# takes the arguments given here (see benchmarks/joeynmt/README.md for the measurement's command):
#
#   bash benchmarks/joeynmt/run.sh --name rnn-16min --minutes 16
#
# Pins: joeynmt 2.3.0 (its wheel asks torch>=1.12.0, so torch 2.13.0 is accepted) and torch 2.13.0, the
# CPU build that this project's machines keep on local disk; a looser torch spec pulls a CUDA build.
# joeynmt 2.3.0 imports importlib_metadata without declaring it (joeynmt/helpers.py): installed here by name;
# it calls SentencePieceProcessor.SetVocabulary, which sentencepiece 0.2.3 no longer has: 0.2.0 is pinned
# (it reads the model that the project's sentencepiece wrote).
# Scoring runs in the project's own environment ($PYTHON, default .venv/bin/python), with the same
# sacreBLEU (vae.metrics.corpus_scores) that scores our models.
set -euo pipefail
cd "$(dirname "$0")/../.."

JOEYNMT_VERSION=2.3.0
TORCH_VERSION=2.13.0
SENTENCEPIECE_VERSION=0.2.0
VENV=.venv-joeynmt
PYTHON=${PYTHON:-.venv/bin/python}

installed() {
    "$VENV/bin/python" - <<PY 2>/dev/null
import importlib.metadata as m, torch, joeynmt.helpers, sentencepiece
assert hasattr(sentencepiece.SentencePieceProcessor, "SetVocabulary")
assert m.version("joeynmt") == "$JOEYNMT_VERSION" and torch.__version__.split("+")[0] == "$TORCH_VERSION"
PY
}

if ! installed; then
    echo "installing joeynmt==$JOEYNMT_VERSION torch==$TORCH_VERSION into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "joeynmt==$JOEYNMT_VERSION" "torch==$TORCH_VERSION" \
        "sentencepiece==$SENTENCEPIECE_VERSION" importlib-metadata
    installed || { echo "$VENV: joeynmt $JOEYNMT_VERSION with torch $TORCH_VERSION did not install" >&2; exit 1; }
fi

PYTHONPATH=. exec "$PYTHON" benchmarks/joeynmt/peer.py --joeynmt-python "$VENV/bin/python" "$@"
