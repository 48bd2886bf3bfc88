"""SentencePiece subwords: reserved ids, train-only training, joint/separate models, packed encodings."""

from __future__ import annotations

import argparse
import json

import pytest
import sentencepiece as spm
import torch

from conftest import LEXICON, synthetic_pairs, write_pair_files
from stages import tokenize as tokenize_stage
from vae.config import Params, TokenizeConfig
from vae.data import SPLITS
from vae.batching import pack, unpack
from vae.tokenizer import BOS, EOS, PAD, UNK, Tokenizers, encode_split, train_model, write_models

# A made-up word spelt with letters the synthetic corpus already uses, so a model that saw it
# often would learn it as one piece, while one that never saw it must spell it out.
HELD_OUT = "tornadique"


def held_out_pairs(n: int) -> list[tuple[str, str]]:
    return [(f"le chat {' '.join([HELD_OUT] * 20)} {i}", f"the cat {' '.join([HELD_OUT] * 20)} {i}") for i in range(n)]


def pieces(processor) -> set[str]:
    return {processor.id_to_piece(i) for i in range(processor.get_piece_size())}


def run_tokenize_stage(tmp_path, splits: dict, **tokenize) -> tuple[Tokenizers, dict]:
    prepared = tmp_path / "prepared"
    for name, pairs in splits.items():
        write_pair_files(prepared, pairs, f"{name}.src", f"{name}.tgt")
    args = argparse.Namespace(prepared=str(prepared), tokenizer=str(tmp_path / "tokenizer"),
                              out=str(tmp_path / "encoded"), metrics=str(tmp_path / "tokenize.json"))
    params = Params(tokenize=TokenizeConfig(**({"vocab_size": 200} | tokenize)))
    tokenize_stage.main(args, params)
    return Tokenizers.load(tmp_path / "tokenizer"), json.loads((tmp_path / "tokenize.json").read_text())


@pytest.fixture(scope="module")
def train_pairs():
    return synthetic_pairs(300, seed=21)


def test_trains_on_small_corpus_with_reserved_ids(tmp_path, train_pairs):
    write_models(train_pairs, TokenizeConfig(vocab_size=150), tmp_path)
    tok = Tokenizers.load(tmp_path)
    for sp in (tok.src, tok.tgt):
        assert (PAD, UNK, BOS, EOS) == (0, 1, 2, 3)
        assert (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()) == (PAD, UNK, BOS, EOS)
        assert [sp.id_to_piece(i) for i in range(4)] == ["<pad>", "<unk>", "<s>", "</s>"]
        assert 50 < sp.get_piece_size() <= 150
    sentence = train_pairs[0][0]
    ids = tok.src.encode(sentence)
    assert UNK not in ids and min(ids) > EOS
    assert tok.src.decode(ids) == sentence


@pytest.mark.parametrize("model_type", ["unigram", "char", "word"])
def test_other_model_types_keep_reserved_ids(model_type, train_pairs):
    sentences = [s for s, _ in train_pairs] + [t for _, t in train_pairs]
    blob = train_model(sentences, TokenizeConfig(model_type=model_type, vocab_size=60))
    sp = spm.SentencePieceProcessor(model_proto=blob)
    assert (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()) == (PAD, UNK, BOS, EOS)
    assert sp.decode(sp.encode(sentences[0])) == sentences[0]


def test_training_is_deterministic(train_pairs):
    sentences = [s for s, _ in train_pairs]
    cfg = TokenizeConfig(vocab_size=120)
    assert train_model(sentences, cfg) == train_model(list(sentences), cfg)


def test_joint_writes_one_shared_model(tmp_path, train_pairs):
    write_models(train_pairs, TokenizeConfig(vocab_size=200, joint=True), tmp_path)
    src, tgt = (tmp_path / "src.model").read_bytes(), (tmp_path / "tgt.model").read_bytes()
    assert src == tgt
    vocab = pieces(Tokenizers.load(tmp_path).src)
    assert "▁maison" in vocab and "▁house" in vocab  # both languages in one vocabulary


def test_separate_models_per_language(tmp_path, train_pairs):
    write_models(train_pairs, TokenizeConfig(vocab_size=200, joint=False), tmp_path)
    assert (tmp_path / "src.model").read_bytes() != (tmp_path / "tgt.model").read_bytes()
    tok = Tokenizers.load(tmp_path)
    src_vocab, tgt_vocab = pieces(tok.src), pieces(tok.tgt)
    assert "▁maison" in src_vocab and "▁maison" not in tgt_vocab
    assert "▁house" in tgt_vocab and "▁house" not in src_vocab
    assert tok.src.decode(tok.src.encode(train_pairs[1][0])) == train_pairs[1][0]
    assert tok.tgt.decode(tok.tgt.encode(train_pairs[1][1])) == train_pairs[1][1]


def test_tokenizer_is_trained_on_train_split_only(tmp_path, train_pairs):
    held_out = held_out_pairs(20)
    splits = {"train": train_pairs, "dev": held_out[:10], "test": held_out[10:]}
    tok, stats = run_tokenize_stage(tmp_path / "stage", splits)
    assert f"▁{HELD_OUT}" not in pieces(tok.src)
    assert len(tok.src.encode(HELD_OUT)) > 1
    assert stats["test"]["src_tokens_per_sentence"] > stats["train"]["src_tokens_per_sentence"]

    # the control: the same stage with the held-out sentences also in train learns the word,
    # so the assertion above really depends on what the model was trained on
    tok_all, _ = run_tokenize_stage(tmp_path / "control", splits | {"train": train_pairs + held_out})
    assert f"▁{HELD_OUT}" in pieces(tok_all.src)
    assert tok_all.src.encode(HELD_OUT, out_type=str) == [f"▁{HELD_OUT}"]


def test_stage_encodes_every_split(tmp_path, train_pairs):
    splits = {"train": train_pairs[:200], "dev": train_pairs[200:250], "test": train_pairs[250:]}
    tok, stats = run_tokenize_stage(tmp_path, splits, joint=False, vocab_size=120)
    assert stats["vocab_size"] == {"src": tok.src.get_piece_size(), "tgt": tok.tgt.get_piece_size()}
    for name in SPLITS:
        data = torch.load(tmp_path / "encoded" / f"{name}.pt")
        src, tgt = unpack(data["src"]), unpack(data["tgt"])
        assert len(src) == len(tgt) == len(splits[name]) == stats[name]["pairs"]
        assert data["src"]["ids"].dtype == torch.int32
        assert [tok.src.decode(s.tolist()) for s in src] == [s for s, _ in splits[name]]
        assert [tok.tgt.decode(t.tolist()) for t in tgt] == [t for _, t in splits[name]]
        assert stats[name]["unk_rate"] == 0.0  # every character occurs in the training split


def test_unknown_characters_are_counted(tmp_path, train_pairs):
    tok = run_tokenize_stage(tmp_path, {"train": train_pairs[:200], "dev": train_pairs[200:210],
                                        "test": [("le chat ☃", "the cat ☃")]})[0]
    stats = encode_split([("le chat ☃", "the cat ☃")], tok, tmp_path / "x.pt")
    assert 0.0 < stats["unk_rate"] < 1.0
    assert UNK in unpack(torch.load(tmp_path / "x.pt")["src"])[0].tolist()


def test_pack_unpack_round_trip():
    sequences = [[5, 6, 7], [], [4], list(range(4, 40)), [9, 9]]
    packed = pack(sequences)
    assert packed["ids"].dtype == torch.int32 and packed["offsets"].dtype == torch.int64
    assert packed["offsets"].tolist() == [0, 3, 3, 4, 40, 42]
    assert packed["ids"].numel() == 42
    restored = unpack(packed)
    assert [t.tolist() for t in restored] == sequences
    assert all(t.dtype == torch.int64 for t in restored)


def test_pack_unpack_empty_and_through_torch_save(tmp_path):
    assert unpack(pack([])) == []
    sequences = [[i] * (i % 5) for i in range(50)]
    torch.save(pack(sequences), tmp_path / "p.pt")
    assert [t.tolist() for t in unpack(torch.load(tmp_path / "p.pt"))] == sequences


def test_lexicon_is_covered(train_pairs):
    # guards the fixtures: the French/English-only pieces asserted above must occur in the corpus
    words = {w for s, t in train_pairs for w in (s + " " + t).split()}
    assert {"maison", "house"} <= words and HELD_OUT not in words and len(LEXICON) >= 20
