"""Reading, cleaning and splitting an aligned corpus (the `prepare` stage).

Filters run in a fixed order and each one's survivors are counted, so the metrics show
exactly where pairs were lost: empty → length (words) → length (characters) → ratio → duplicates.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from vae import UserError
from vae.config import PrepareConfig

_SPACE = re.compile(r"\s+")
SPLITS = ("train", "dev", "test")
# The character bound of a side is max_words × CHARS_PER_WORD. Counting whitespace words alone lets
# a line without spaces (a 5 MB table dump, a run-on URL) through as "one word", and training then
# meets a sentence of millions of subwords. A subword covers about a character or more, so this
# bound also caps a kept line's subwords (roughly 1,000 at max_words 50). EuroParl words average
# about 6 characters with their space (the bundled sample's longest line is 260 characters), so 20
# per word drops no real sentence that max_words keeps. Derived from max_words, not a setting.
CHARS_PER_WORD = 20


def read_lines(path: Path) -> list[str]:
    """Read UTF-8 lines strictly; a bad byte is reported with its line number."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    lines = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                lines.append(raw.decode("utf-8").rstrip("\r\n"))
            except UnicodeDecodeError as err:
                raise UserError(f"{path}, line {number}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
    if not lines:
        raise UserError(f"{path}: the file is empty")
    return lines


def read_aligned(src_path: Path, tgt_path: Path) -> list[tuple[str, str]]:
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise UserError(
            f"the two sides are not aligned: {src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}; "
            "line N of one file must translate line N of the other"
        )
    return list(zip(src, tgt))


def normalise(text: str, form: str) -> str:
    """Unicode normal form, then every run of whitespace (incl. NBSP, tabs) to one space."""
    return _SPACE.sub(" ", unicodedata.normalize(form, text)).strip()


@dataclass
class Prepared:
    splits: dict[str, list[tuple[str, str]]]
    counts: dict[str, int]


def prepare(pairs: list[tuple[str, str]], cfg: PrepareConfig) -> Prepared:
    """Clean, filter, de-duplicate and split `pairs`; return the splits and per-filter counts."""
    counts = {"input": len(pairs)}
    pairs = [(normalise(s, cfg.unicode_form), normalise(t, cfg.unicode_form)) for s, t in pairs]
    pairs = [(s, t) for s, t in pairs if s and t]
    counts["after_empty"] = len(pairs)
    lengths = [(len(s.split()), len(t.split())) for s, t in pairs]
    keep = [ls <= cfg.max_words and lt <= cfg.max_words for ls, lt in lengths]
    pairs, lengths = [p for p, k in zip(pairs, keep) if k], [n for n, k in zip(lengths, keep) if k]
    counts["after_length"] = len(pairs)
    max_chars = cfg.max_words * CHARS_PER_WORD
    keep = [len(s) <= max_chars and len(t) <= max_chars for s, t in pairs]
    pairs, lengths = [p for p, k in zip(pairs, keep) if k], [n for n, k in zip(lengths, keep) if k]
    counts["after_chars"] = len(pairs)
    pairs = [p for p, (ls, lt) in zip(pairs, lengths) if max(ls, lt) <= cfg.max_length_ratio * min(ls, lt)]
    counts["after_ratio"] = len(pairs)
    if cfg.deduplicate:
        pairs = list(dict.fromkeys(pairs))  # keeps first occurrences, in order
    counts["after_dedup"] = len(pairs)

    wanted = cfg.train_size + cfg.dev_size + cfg.test_size
    if wanted > len(pairs):
        raise UserError(
            f"prepare: the split asks for {wanted} pairs (train_size {cfg.train_size} + dev_size {cfg.dev_size} "
            f"+ test_size {cfg.test_size}) but only {len(pairs)} survive the filters; lower the sizes in params.yaml"
        )
    order = list(range(len(pairs)))
    random.Random(cfg.seed).shuffle(order)
    # test first, then dev, then train: growing train_size never moves a test pair into train.
    bounds = {"test": (0, cfg.test_size), "dev": (cfg.test_size, cfg.test_size + cfg.dev_size),
              "train": (cfg.test_size + cfg.dev_size, wanted)}
    splits = {name: [pairs[i] for i in order[lo:hi]] for name, (lo, hi) in bounds.items()}
    for name in SPLITS:
        counts[name] = len(splits[name])
    return Prepared(splits={name: splits[name] for name in SPLITS}, counts=counts)
