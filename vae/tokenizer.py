"""SentencePiece subwords: trained on the training split only, then used to encode every split.

Ids 0–3 are reserved the same way on both sides: <pad>=0, <unk>=1, <s>=2, </s>=3, so
padding masks and the decoder's start/stop symbols never depend on the language.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm
import torch

from vae import UserError
from vae.config import TokenizeConfig
from vae.io import atomic_path, save_torch

from vae.batching import pack
from vae.symbols import BOS, EOS, PAD, UNK

__all__ = ["BOS", "EOS", "PAD", "UNK", "Tokenizers", "encode_split", "train_model", "write_models"]


def train_model(sentences: list[str], cfg: TokenizeConfig, threads: int = 2) -> bytes:
    """Train one SentencePiece model on `sentences`; return its serialised bytes."""
    spm.set_random_generator_seed(cfg.seed)
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=model,
            model_type=cfg.model_type,
            vocab_size=cfg.vocab_size,
            character_coverage=cfg.character_coverage,
            hard_vocab_limit=False,  # a tiny corpus gets a smaller vocabulary rather than an error
            pad_id=PAD, unk_id=UNK, bos_id=BOS, eos_id=EOS,
            num_threads=threads,
            minloglevel=2,
        )
    except RuntimeError as err:
        needed = re.search(r"smaller than required_chars\. \d+ vs (\d+)", str(err))
        if needed:  # every character kept by character_coverage needs a piece of its own
            raise UserError(f"'tokenize.vocab_size' {cfg.vocab_size} is too small for this corpus: its characters "
                            f"alone need {needed.group(1)} pieces (or lower 'tokenize.character_coverage')") from None
        raise
    return model.getvalue()


@dataclass(frozen=True)
class Tokenizers:
    """The source-side and target-side models (the same model when `joint`)."""

    src: spm.SentencePieceProcessor
    tgt: spm.SentencePieceProcessor

    @classmethod
    def load(cls, directory: str | Path) -> "Tokenizers":
        directory = Path(directory)
        processors = []
        for side in ("src", "tgt"):
            path = directory / f"{side}.model"
            if not path.is_file():
                raise UserError(f"{path}: no such tokenizer; run the tokenize stage first (dvc repro tokenize)")
            try:
                processors.append(spm.SentencePieceProcessor(model_file=str(path)))
            except (RuntimeError, OSError) as err:
                raise UserError(f"{path}: not a SentencePiece model ({str(err)[:120]}); "
                                "re-run the tokenize stage (dvc repro tokenize)") from None
        return cls(*processors)


def write_models(train_pairs: list[tuple[str, str]], cfg: TokenizeConfig, out_dir: Path) -> None:
    """Train on the training pairs and write out_dir/src.model and out_dir/tgt.model."""
    src, tgt = [s for s, _ in train_pairs], [t for _, t in train_pairs]
    if cfg.joint:
        joint = train_model(src + tgt, cfg)
        models = {"src": joint, "tgt": joint}
    else:
        models = {"src": train_model(src, cfg), "tgt": train_model(tgt, cfg)}
    for side, blob in models.items():
        with atomic_path(out_dir / f"{side}.model") as tmp:
            tmp.write_bytes(blob)


def encode_split(pairs: list[tuple[str, str]], tokenizers: Tokenizers, path: Path) -> dict[str, float]:
    """Encode one split to `path`; return its subword statistics."""
    src = tokenizers.src.encode([s for s, _ in pairs])
    tgt = tokenizers.tgt.encode([t for _, t in pairs])
    save_torch(path, {"src": pack(src), "tgt": pack(tgt)})
    n = max(len(pairs), 1)
    unk = sum(seq.count(UNK) for seq in src + tgt)
    total = sum(map(len, src + tgt)) or 1
    return {"pairs": len(pairs), "src_tokens_per_sentence": sum(map(len, src)) / n,
            "tgt_tokens_per_sentence": sum(map(len, tgt)) / n, "unk_rate": unk / total}
