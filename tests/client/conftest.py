"""Starts the real kiln binary on a free loopback port with a temporary store for each test."""
import os
import pathlib
import subprocess

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
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "models")
    yield s
    s.stop()


@pytest.fixture
def tiny_path() -> str:
    return str(SHARED / "fixtures" / "tiny-llama-f16.gguf")
