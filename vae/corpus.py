"""Sources of a parallel corpus: the bundled EuroParl sample, the official archive, local files.

Every source ends the same way: two aligned UTF-8 text files (`src.txt`, `tgt.txt`) and a
`manifest.json` recording where they came from and their sha256, written atomically.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import socket
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

from vae import UserError
from vae.config import DownloadConfig
from vae.io import atomic_path, write_json

CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def open_maybe_gzip(path: Path) -> IO[bytes]:
    """Open plain or gzip-compressed bytes, telling them apart by the gzip magic number."""
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def fetch(cfg: DownloadConfig, out_dir: Path, cache_dir: Path) -> dict:
    """Materialise the configured source as out_dir/{src,tgt}.txt plus a manifest; return it."""
    if cfg.source == "bundled":
        src, tgt, manifest = _bundled(cfg)
    elif cfg.source == "local":
        src, tgt, manifest = _local(cfg)
    else:
        src, tgt, manifest = _europarl(cfg, cache_dir)
    manifest |= {"source": cfg.source, "src_lang": cfg.src_lang, "tgt_lang": cfg.tgt_lang}
    for side, opener in (("src", src), ("tgt", tgt)):
        with atomic_path(out_dir / f"{side}.txt") as tmp, opener() as fin, open(tmp, "wb") as fout:
            shutil.copyfileobj(fin, fout, CHUNK)
    write_json(out_dir / "manifest.json", manifest)
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
    return (lambda: open_maybe_gzip(files[cfg.src_lang])), (lambda: open_maybe_gzip(files[cfg.tgt_lang])), manifest


def _local(cfg: DownloadConfig):
    """Two aligned text files given by path, plain or gzipped."""
    paths = []
    for key in ("local_src", "local_tgt"):
        value = getattr(cfg, key)
        if not value:
            raise UserError(f"'download.{key}' must name a file when download.source is 'local'")
        if not Path(value).is_file():
            raise UserError(f"'download.{key}': no such file: {value}")
        paths.append(Path(value))
    manifest = {"files": {str(p): sha256_of(p) for p in paths}}
    return (lambda: open_maybe_gzip(paths[0])), (lambda: open_maybe_gzip(paths[1])), manifest


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


def _europarl(cfg: DownloadConfig, cache_dir: Path):
    """The official archive: streamed to cache_dir, verified, then its two members read."""
    pair = europarl_pair(cfg.src_lang, cfg.tgt_lang)
    url = cfg.europarl_url.format(pair=pair)
    archive = cache_dir / f"europarl-v7.{pair}.tgz"
    if not archive.is_file():
        download(url, archive)
    digest = sha256_of(archive)
    if cfg.europarl_sha256 and digest != cfg.europarl_sha256:
        archive.unlink()
        raise UserError(
            f"europarl: checksum mismatch for {url}: expected {cfg.europarl_sha256}, got {digest}. "
            "The damaged archive was deleted; run the stage again to fetch it anew."
        )

    def member(lang: str):
        def opener():
            tar = tarfile.open(archive, "r:gz")
            name = next((m for m in tar.getnames() if m.endswith(f"europarl-v7.{pair}.{lang}")), None)
            if name is None:
                raise UserError(f"europarl: {archive} has no member europarl-v7.{pair}.{lang}")
            return tar.extractfile(name)

        return opener

    manifest = {"url": url, "files": {str(archive): digest}}
    return member(cfg.src_lang), member(cfg.tgt_lang), manifest


def download(url: str, dest: Path, timeout: float = 30.0) -> None:
    """Stream `url` to `dest` with a progress bar; resume a `.part` left by an interrupted run.

    The final name appears only once the transfer is complete, so an interrupted download
    never looks finished.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the .part already holds the whole file
            part.rename(dest)
            return
        raise UserError(f"download of {url} failed: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise UserError(
            f"could not reach {url} ({reason}). This machine seems to be offline or the server is down. "
            "The pipeline does not need the network: set 'download.source: bundled' in params.yaml to use the "
            "EuroParl sample shipped in data/, or download the archive elsewhere and point "
            "'download.source: local' with 'download.local_src' / 'download.local_tgt' at the two extracted "
            "files. Then run 'dvc repro' again."
        ) from None
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
    part.rename(dest)
