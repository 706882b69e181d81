"""Starts the real kiln binary on a free loopback port with a temporary store for each test."""
import contextlib
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"


def kiln_bin() -> str:
    path = os.environ.get("KILN_BIN") or str(ROOT / "target" / "release" / "kiln")
    assert os.path.isfile(path), f"{path} is missing: run `cargo build --release -p kiln-server` first"
    return path


class Server:
    def __init__(self, store: pathlib.Path, *args: str):
        self.store = store
        self.proc = subprocess.Popen(
            [kiln_bin(), "serve", "--host", "127.0.0.1:0", "--models", str(store), *args],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "KILN_LOG": "warn"},
        )
        line = self.proc.stdout.readline()
        assert line.startswith("kiln listening on "), line
        self.url = "http://" + line.split()[-1]

    def stop(self):
        """Stops the server and removes its store: a module's store holds gigabytes of quantized
        gemma3-270m, and CI's disk is not large enough to keep every module's until the session ends."""
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.store, ignore_errors=True)


@contextlib.contextmanager
def dropped(client, name: str):
    """Deletes the model `name` (and with it every blob only it uses) once the block ends, pass or
    fail, so a module that makes dozens of ~250 MB models holds one at a time."""
    import ollama

    try:
        yield name
    finally:
        with contextlib.suppress(ollama.ResponseError):
            client.delete(name)


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "models")
    yield s
    s.stop()


@pytest.fixture
def tiny_path() -> str:
    return str(SHARED / "fixtures" / "tiny-llama-f16.gguf")


def _sha256(path: pathlib.Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.fixture(scope="session")
def gemma_f16() -> pathlib.Path:
    """The real gemma3-270m model as F16, made once from the PyPI package and cached in target/."""
    import json

    want = json.loads((SHARED / "fixtures" / "gemma3-270m-expected.json").read_text())["source_sha256"]
    out = ROOT / "target" / "fixtures" / "gemma3-270m-f16.gguf"
    if not out.exists() or _sha256(out) != want:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        subprocess.run([sys.executable, str(SHARED / "fixtures" / "gemma3_270m_f16.py"), str(tmp)], check=True)
        os.replace(tmp, out)
    assert _sha256(out) == want, "gemma3-270m F16 does not match the recipe's sha256"
    return out
