"""Reading, cleaning and splitting an aligned corpus (the `prepare` stage).

Filters run in a fixed order and each one's survivors are counted, so the metrics show
exactly where pairs were lost: empty → length (words) → length (characters) → ratio → duplicates.
"""

from __future__ import annotations

import json
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


def read_lines(path: Path, origin: str = "") -> list[str]:
    """Read UTF-8 lines strictly; a bad byte is reported with its line number. Messages name `origin`
    (the user's file that `path` is a copy of), where given, before `path`."""
    name = f"{origin} (copied to {path})" if origin else str(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(4096)
    # UTF-16 text of ASCII letters is valid UTF-8, NULs and all: only its look tells it apart
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or head.count(0) > len(head) // 10:
        mark = "a UTF-16 byte-order mark" if head[:2] in (b"\xff\xfe", b"\xfe\xff") else "many NUL bytes"
        raise UserError(f"{name}: looks like UTF-16 (it has {mark}), not UTF-8; convert it, e.g. "
                        "iconv -f UTF-16 -t UTF-8 FILE > FILE.utf8")
    lines, lone_cr = [], 0
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                lines.append(raw.decode("utf-8").rstrip("\r\n"))
            except UnicodeDecodeError as err:
                raise UserError(f"{name}, line {number}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
            lone_cr += lines[-1].count("\r")
    if not lines:
        raise UserError(f"{name}: the file is empty")
    if lone_cr >= len(lines):  # read by LF, a file whose lines end in CR alone is a few huge lines
        raise UserError(f"{name}: its lines end in CR alone (old Mac line endings), so it reads as {len(lines)} "
                        "line(s); convert them to LF, e.g. tr '\\r' '\\n' < FILE > FILE.lf")
    return lines


def read_aligned(src_path: Path, tgt_path: Path, origins: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """The pairs of two aligned files; `origins` ({'src': ..., 'tgt': ...}) names what they were copied from."""
    origins = origins or {}
    src, tgt = read_lines(src_path, origins.get("src", "")), read_lines(tgt_path, origins.get("tgt", ""))
    if len(src) != len(tgt):
        src_name, tgt_name = (origins.get(side) or str(path) for side, path in (("src", src_path), ("tgt", tgt_path)))
        raise UserError(
            f"the two sides are not aligned: {src_name} has {len(src)} lines but {tgt_name} has {len(tgt)}; "
            "line N of one file must translate line N of the other"
        )
    return list(zip(src, tgt))


def copied_from(raw: Path) -> dict[str, str]:
    """The files that raw/src.txt and raw/tgt.txt were copied from, as the download stage's manifest
    records them, so that a message names the file the user can mend; {} where it does not say."""
    try:
        manifest = json.loads((raw / "manifest.json").read_text(encoding="utf-8"))
        files = list(manifest["files"])
        if manifest["source"] == "europarl":  # one archive, one member per language
            return {side: f"{files[0]} ({manifest[f'{side}_lang']} member)" for side in ("src", "tgt")}
        return dict(zip(("src", "tgt"), files * 2 if len(files) == 1 else files))
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return {}


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
    if not pairs:
        raise UserError(f"prepare: the corpus has no usable lines: each of its {counts['input']} pair(s) is blank "
                        "(or whitespace only) on one side or both")
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
