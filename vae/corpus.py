"""Sources of a parallel corpus: the bundled EuroParl sample, the official archive, local files.

Every source ends the same way: two aligned UTF-8 text files (`src.txt`, `tgt.txt`) and a
`manifest.json` recording where they came from and their sha256. The three are written into a
temporary folder that replaces the output folder as a whole, so a failure (a corrupt file, a full
disk) leaves the previous output exactly as it was. A downloaded archive is checked before it is
cached: a wrong body (an HTML page, a truncated transfer) is deleted, never kept.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import socket
import tarfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import IO, Callable

from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

from vae import UserError
from vae.config import DownloadConfig
from vae.io import atomic_dir, write_json

CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
# What reading a truncated or damaged .gz / .tgz raises (gzip.BadGzipFile is an OSError).
CORRUPT = (EOFError, zlib.error, gzip.BadGzipFile, tarfile.TarError)
FALLBACK = ("set 'download.source: bundled' in params.yaml to use the EuroParl sample shipped in data/, or "
            "'download.source: local' with 'download.local_src' / 'download.local_tgt' naming two aligned files")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def head_of(path: Path, size: int = 2) -> bytes:
    with open(path, "rb") as f:
        return f.read(size)


def open_maybe_gzip(path: Path) -> IO[bytes]:
    """Open plain or gzip-compressed bytes, telling them apart by the gzip magic number."""
    return gzip.open(path, "rb") if head_of(path) == GZIP_MAGIC else open(path, "rb")


class CheckedReader:
    """A binary stream whose decompression errors become one UserError naming the file it reads."""

    def __init__(self, open_stream: Callable[[], IO[bytes]], what: str, advice: str,
                 on_error: Callable[[], None] | None = None):
        self.what, self.advice, self.on_error = what, advice, on_error
        self.stream = self._checked(open_stream)

    def _checked(self, call):
        try:
            return call()
        except CORRUPT as err:
            if self.on_error is not None:
                self.on_error()
            raise UserError(f"{self.what} is truncated or corrupt ({err}); {self.advice}") from None

    def read(self, size: int = -1) -> bytes:
        return self._checked(lambda: self.stream.read(size))

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stream.close()


def fetch(cfg: DownloadConfig, out_dir: Path, cache_dir: Path) -> dict:
    """Materialise the configured source as out_dir/{src,tgt}.txt plus a manifest; return it."""
    if cfg.source == "bundled":
        src, tgt, manifest = _bundled(cfg)
    elif cfg.source == "local":
        src, tgt, manifest = _local(cfg)
    else:
        src, tgt, manifest = _europarl(cfg, cache_dir)
    manifest |= {"source": cfg.source, "src_lang": cfg.src_lang, "tgt_lang": cfg.tgt_lang}
    with atomic_dir(out_dir) as tmp:  # both sides and the manifest, or nothing new at all
        for side, opener in (("src", src), ("tgt", tgt)):
            with opener() as fin, open(tmp / f"{side}.txt", "wb") as fout:
                shutil.copyfileobj(fin, fout, CHUNK)
        write_json(tmp / "manifest.json", manifest)
    return manifest


def _bundled(cfg: DownloadConfig):
    """The sample shipped in the repository, checked against its SHA256SUMS."""
    root = Path(cfg.bundled_dir)
    sums_file = root / "SHA256SUMS"
    if not sums_file.is_file():
        raise UserError(f"bundled corpus: {sums_file} is missing; is '{root}' the right bundled_dir?")
    sums = dict(reversed(line.split(maxsplit=1)) for line in sums_file.read_text().splitlines() if line.strip())
    sums = {name.strip().lstrip("*"): digest for name, digest in sums.items()}
    files = {}
    for lang in (cfg.src_lang, cfg.tgt_lang):
        matches = [name for name in sums if name.endswith(f".{lang}.gz") or name.endswith(f".{lang}")]
        if len(matches) != 1:
            raise UserError(f"bundled corpus: SHA256SUMS lists no single file for language '{lang}'")
        path = root / matches[0]
        actual = sha256_of(path) if path.is_file() else "missing"
        if actual != sums[matches[0]]:
            raise UserError(
                f"bundled corpus: checksum mismatch for {path}: expected {sums[matches[0]]}, got {actual}. "
                "The file is damaged or was replaced; restore it with 'git checkout -- data/'."
            )
        files[lang] = path
    manifest = {"files": {str(p): sums[p.name] for p in files.values()}}

    def opener(path: Path):
        return lambda: CheckedReader(lambda: open_maybe_gzip(path), f"bundled corpus: {path}",
                                     "restore it with 'git checkout -- data/'")

    return opener(files[cfg.src_lang]), opener(files[cfg.tgt_lang]), manifest


def _local(cfg: DownloadConfig):
    """Two aligned text files given by path, plain or gzipped."""
    paths = []
    for key in ("local_src", "local_tgt"):
        value = getattr(cfg, key)
        if not value:
            raise UserError(f"'download.{key}' must name a file when download.source is 'local'")
        path = Path(value)
        if path.is_dir():
            raise UserError(f"'download.{key}': {value} is a directory; name a file")
        if not path.is_file():
            raise UserError(f"'download.{key}': no such file: {value}")
        # read as plain text, bytes that are not gzip would be reported as bad UTF-8 further on
        if path.suffix == ".gz" and head_of(path) != GZIP_MAGIC:
            raise UserError(f"'download.{key}': {value} is not a gzip file (its name ends in .gz, but it starts "
                            f"with the bytes {head_of(path, 8).hex(' ') or 'of an empty file'}); "
                            "replace it with the gzipped corpus, or name a plain text file")
        paths.append(path)
    manifest = {"files": {str(p): sha256_of(p) for p in paths}}

    def opener(key: str, path: Path):
        return lambda: CheckedReader(lambda: open_maybe_gzip(path), f"'download.{key}': {path}",
                                     "replace it with a complete copy (or a plain text file)")

    return opener("local_src", paths[0]), opener("local_tgt", paths[1]), manifest


def europarl_pair(src_lang: str, tgt_lang: str) -> str:
    """EuroParl v7 archives pair every language with English and are named '<xx>-en'."""
    langs = {src_lang, tgt_lang}
    if "en" not in langs or len(langs) != 2:
        raise UserError(
            f"EuroParl v7 pairs each language with English; '{src_lang}'-'{tgt_lang}' is not available. "
            "Use download.source: local for other pairs."
        )
    (other,) = langs - {"en"}
    return f"{other}-en"


def europarl_url(template: str, pair: str) -> str:
    """`download.europarl_url` with its one placeholder, {pair}, filled in."""
    try:
        url = template.format(pair=pair)
    except KeyError as err:
        problem = f"unknown placeholder {{{err.args[0]}}}"
    except (IndexError, ValueError, AttributeError) as err:
        problem = f"not a valid template ({err})"
    else:
        if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", url):
            raise UserError(f"'download.europarl_url': {url!r} is not a URL (it needs a scheme such as https://)")
        return url
    raise UserError(
        f"'download.europarl_url' {template!r}: {problem}; the only placeholder is {{pair}} (e.g. "
        "https://www.statmt.org/europarl/v7/{pair}.tgz); write {{ and }} for literal braces"
    )


def member_names(pair: str, *langs: str) -> list[str]:
    return [f"europarl-v7.{pair}.{lang}" for lang in langs]


def check_archive(path: Path, url: str, members: list[str]) -> None:
    """Raise UserError unless `path` is a complete gzipped tar holding every name in `members`.

    One pass to the end of the gzip stream, so a truncated or damaged archive is caught by its
    CRC and length, not only by its tar headers.
    """
    try:
        with gzip.open(path, "rb") as gz:
            with tarfile.open(fileobj=gz, mode="r|") as tar:
                names = [m.name for m in tar]
            while gz.read(CHUNK):
                pass
    except CORRUPT:
        raise UserError(f"europarl: {url} did not return the expected .tgz archive: received {describe(path)}. "
                        f"Nothing was cached. Check 'download.europarl_url', or {FALLBACK}.") from None
    missing = [m for m in members if not any(n.endswith(m) for n in names)]
    if missing:
        listed = ", ".join(names[:5]) + (", …" if len(names) > 5 else "") if names else "nothing"
        raise UserError(f"europarl: the archive from {url} has no member {' or '.join(missing)} (it holds {listed}). "
                        f"Nothing was cached. Check 'download.europarl_url', or {FALLBACK}.")


def describe(path: Path) -> str:
    """What a file that should have been a .tgz looks like, in a few words: kind, size, first bytes."""
    size = path.stat().st_size
    if size == 0:
        return "an empty body"
    with open(path, "rb") as f:
        head = f.read(512)
    text = head.lower().lstrip()
    if text.startswith((b"<!doctype html", b"<html")) or b"<html" in text:
        kind = "an HTML page"
    elif head[:2] == GZIP_MAGIC:
        kind = "gzip data that is truncated, damaged or not a tar archive"
    else:
        kind = "data that is not gzip-compressed"
    start = " ".join(head[:60].decode("utf-8", "replace").split())
    return f"{kind} ({size:,} bytes, starting {start!r})"


def cached_archive(cache_dir: Path, url: str, pair: str) -> Path:
    """Where the archive from `url` is kept: named after the URL, so that another URL (one that has
    moved, or is wrong) is fetched and checked rather than answered by what an old one returned."""
    return cache_dir / f"europarl-v7.{pair}.{hashlib.sha256(url.encode()).hexdigest()[:12]}.tgz"


def _europarl(cfg: DownloadConfig, cache_dir: Path):
    """The official archive: streamed to cache_dir, checked, then its two members read."""
    pair = europarl_pair(cfg.src_lang, cfg.tgt_lang)
    url = europarl_url(cfg.europarl_url, pair)
    archive = cached_archive(cache_dir, url, pair)
    members = member_names(pair, cfg.src_lang, cfg.tgt_lang)
    if not archive.is_file():
        download(url, archive, validate=lambda part: check_archive(part, url, members))
    digest = sha256_of(archive)  # the pin is checked on every run, a cached archive included
    if cfg.europarl_sha256 and digest != cfg.europarl_sha256.lower():
        archive.unlink()
        raise UserError(
            f"europarl: checksum mismatch for {url}: expected {cfg.europarl_sha256}, got {digest}. "
            "The damaged archive was deleted; run the stage again to fetch it anew."
        )

    def member(name: str):
        def open_member():
            tar = tarfile.open(archive, "r:gz")
            found = next((m for m in tar.getnames() if m.endswith(name)), None)
            if found is None:
                tar.close()
                raise UserError(f"europarl: {archive} has no member {name}")
            return _TarMember(tar, tar.extractfile(found))

        # An archive cached by an older version may never have been checked: delete it if damaged.
        return lambda: CheckedReader(open_member, f"europarl: the cached archive {archive}",
                                     "it was deleted; run the stage again to download it anew",
                                     on_error=lambda: archive.unlink(missing_ok=True))

    manifest = {"url": url, "files": {str(archive): digest}}
    return member(members[0]), member(members[1]), manifest


class _TarMember:
    """One member of an open tar archive, read as a stream; closing it closes the archive too."""

    def __init__(self, tar: tarfile.TarFile, stream: IO[bytes]):
        self.tar, self.stream = tar, stream

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(size)

    def close(self) -> None:
        self.stream.close()
        self.tar.close()


def download(url: str, dest: Path, timeout: float = 30.0,
             validate: Callable[[Path], None] | None = None) -> None:
    """Stream `url` to `dest` with a progress bar; resume a `.part` left by an interrupted run.

    The final name appears only once the transfer is complete and `validate(part)` accepted it,
    so an interrupted or wrong download never looks finished; a rejected one is deleted.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the .part already holds the whole file
            _accept(part, dest, validate)
            return
        raise UserError(f"download of {url} failed: HTTP {err.code} {err.reason}. "
                        f"Check 'download.europarl_url', or {FALLBACK}.") from None
    except ValueError as err:  # urllib's "unknown url type" and the like
        raise UserError(f"cannot download {url}: {err}; check 'download.europarl_url'") from None
    except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise UserError(f"could not reach {url} ({reason}). This machine seems to be offline or the server is "
                        f"down. The pipeline does not need the network: {FALLBACK} (e.g. the two files extracted "
                        "from an archive downloaded elsewhere). Then run 'dvc repro' again.") from None
    with response:
        if have and response.status != 206:  # server ignored Range: start over
            have = 0
        total = response.length + have if response.length is not None else None
        with open(part, "ab" if have else "wb") as f, Progress(
            "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(), transient=True,
        ) as progress:
            task = progress.add_task(f"download {dest.name}", total=total, completed=have)
            try:
                for block in iter(lambda: response.read(CHUNK), b""):
                    f.write(block)
                    progress.advance(task, len(block))
            except (socket.timeout, ConnectionError, OSError) as err:
                raise UserError(f"download of {url} broke off ({err}); run again to resume") from None
    if total is not None and part.stat().st_size != total:
        raise UserError(f"download of {url} ended early ({part.stat().st_size} of {total} bytes); run again to resume")
    _accept(part, dest, validate)


def _accept(part: Path, dest: Path, validate: Callable[[Path], None] | None) -> None:
    """Give the finished `.part` its final name if `validate` accepts it; otherwise delete it."""
    if validate is not None:
        try:
            validate(part)
        except UserError:  # rejected; a Ctrl-C while checking keeps the .part for the next run
            part.unlink(missing_ok=True)
            raise
    part.rename(dest)
