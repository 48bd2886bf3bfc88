"""Shared fixtures: tiny corpora, a loopback HTTP server, and a way to run the stage CLIs.

Nothing here touches the network: the HTTP server listens on 127.0.0.1 only, and the
"unreachable" address is a loopback port that is bound but never listens.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
import re
import socket
import subprocess
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `pytest` (not `python -m pytest`) must import this checkout's vae/, stages/
    sys.path.insert(0, str(REPO))
BUNDLED = REPO / "data" / "europarl-v7-fr-en-sample100k"
BUNDLED_FR = BUNDLED / "europarl-v7.fr-en.sample100k.fr.gz"
BUNDLED_EN = BUNDLED / "europarl-v7.fr-en.sample100k.en.gz"

# A toy "translation" lexicon: every French word has one English counterpart, so the
# synthetic pairs are aligned and every sentence has a translation of the same length.
LEXICON = {
    "le": "the", "chat": "cat", "chien": "dog", "mange": "eats", "voit": "sees", "grand": "big",
    "petit": "small", "rouge": "red", "bleu": "blue", "maison": "house", "jardin": "garden",
    "dans": "in", "sous": "under", "avec": "with", "parlement": "parliament", "commission": "commission",
    "vote": "votes", "rapport": "report", "europe": "europe", "politique": "policy", "nouveau": "new",
    "question": "question", "monsieur": "mister", "président": "president", "débat": "debate",
    "important": "important", "aujourd'hui": "today", "demain": "tomorrow", "très": "very", "et": "and",
}


def synthetic_pairs(n: int, seed: int = 0, min_words: int = 3, max_words: int = 10) -> list[tuple[str, str]]:
    """`n` distinct aligned (French, English) pairs over LEXICON, reproducible from `seed`."""
    rng = random.Random(seed)
    words = sorted(LEXICON)
    pairs, seen = [], set()
    while len(pairs) < n:
        fr = [rng.choice(words) for _ in range(rng.randint(min_words, max_words))]
        pair = (" ".join(fr), " ".join(LEXICON[w] for w in fr))
        if pair not in seen:
            seen.add(pair)
            pairs.append(pair)
    return pairs


def random_pairs(n: int, seed: int, lo: int = 3, hi: int = 8, vocab: int = 30):
    """`n` pairs of random id sequences (ids 4..vocab-1, no specials), lengths lo..hi, as (src, tgt) lists."""
    import torch

    g = torch.Generator().manual_seed(seed)

    def seq():
        return torch.randint(4, vocab, (int(torch.randint(lo, hi + 1, (1,), generator=g)),), generator=g)

    src, tgt = [], []
    for _ in range(n):
        src.append(seq())
        tgt.append(seq())
    return src, tgt


def real_pairs(n: int) -> list[tuple[str, str]]:
    """The first `n` pairs of the repository's bundled EuroParl sample."""
    out = []
    with gzip.open(BUNDLED_FR, "rt", encoding="utf-8") as fr, gzip.open(BUNDLED_EN, "rt", encoding="utf-8") as en:
        for s, t in zip(fr, en):
            out.append((s.rstrip("\n"), t.rstrip("\n")))
            if len(out) == n:
                break
    return out


def write_text_lines(path: Path, lines, *, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def write_pair_files(directory: Path, pairs, src_name: str = "src.txt", tgt_name: str = "tgt.txt"):
    """Write the two sides of `pairs` as plain files; return their paths."""
    return (write_text_lines(directory / src_name, [s for s, _ in pairs]),
            write_text_lines(directory / tgt_name, [t for _, t in pairs]))


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_bundled(directory: Path, pairs, stem: str = "europarl-v7.fr-en.tiny") -> Path:
    """A bundled-corpus directory in the real layout: <stem>.{fr,en}.gz plus SHA256SUMS."""
    directory.mkdir(parents=True, exist_ok=True)
    sums = []
    for lang, side in (("en", 1), ("fr", 0)):
        path = write_text_lines(directory / f"{stem}.{lang}.gz", [p[side] for p in pairs], gz=True)
        sums.append(f"{sha256_bytes(path.read_bytes())}  {path.name}\n")
    (directory / "SHA256SUMS").write_text("".join(sums))
    return directory


def europarl_tgz(pairs, pair: str = "fr-en") -> bytes:
    """A gzipped tar in the official EuroParl v7 layout: members europarl-v7.<pair>.{fr,en}."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for lang, side in (("fr", 0), ("en", 1)):
            data = "".join(p[side] + "\n" for p in pairs).encode("utf-8")
            info = tarfile.TarInfo(f"europarl-v7.{pair}.{lang}")
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def tiny_pairs():
    return synthetic_pairs(40, seed=3)


# --- loopback HTTP server ---------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        srv = self.server
        wanted = self.headers.get("Range")
        srv.requests.append({"path": self.path, "range": wanted})
        body = srv.files.get(self.path)
        if body is None:
            self._reply(404, b"not found")
            return
        match = re.fullmatch(r"bytes=(\d+)-", wanted or "")
        if match and srv.honour_range:
            start = int(match.group(1))
            if start >= len(body):
                self._reply(416, b"", {"Content-Range": f"bytes */{len(body)}"})
                return
            headers = {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"}
            self._reply(206, body[start:], headers)
            return
        self._reply(200, body)

    def _reply(self, code: int, body: bytes, headers: dict | None = None):
        # Recorded before the reply leaves: the client may finish reading (and the test assert)
        # before this thread runs again.
        self.server.responses.append(code)
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep pytest output clean
        pass


class LoopbackServer:
    """An HTTP server on 127.0.0.1:<free port> serving `files` (path -> bytes), Range-aware."""

    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.files = {}
        self.httpd.requests = []
        self.httpd.responses = []
        self.httpd.honour_range = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def files(self) -> dict[str, bytes]:
        return self.httpd.files

    @property
    def requests(self) -> list[dict]:
        return self.httpd.requests

    @property
    def responses(self) -> list[int]:
        return self.httpd.responses

    @property
    def honour_range(self) -> bool:
        return self.httpd.honour_range

    @honour_range.setter
    def honour_range(self, value: bool) -> None:
        self.httpd.honour_range = value

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"


@pytest.fixture
def http_server():
    server = LoopbackServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)


@pytest.fixture
def dead_port():
    """A loopback port that is bound but never listens: connecting to it is refused at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch):
    """urllib honours *_proxy variables; the loopback server must be reached directly."""
    for name in list(os.environ):
        if name.lower() in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}:
            monkeypatch.delenv(name, raising=False)


# --- running the stage CLIs -------------------------------------------------------------


def cli_env() -> dict[str, str]:
    """The environment for a stage subprocess: this interpreter's bin first, the repo importable."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["COLUMNS"] = "200"
    return env


def run_stage(stage: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m stages.<stage> ARGS` in `cwd`, as DVC would run it."""
    return subprocess.run(
        [sys.executable, "-m", f"stages.{stage}", *args],
        cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=120,
    )


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """In-process tests use tiny tensors: one intra-op thread is fastest, and immune to
    oversubscribed cores (the end-to-end runs are subprocesses and keep torch's default)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
