"""A real OpenAI-compatible server for tests: llama-cpp-python's own, serving the embedded GGUF on 127.0.0.1.

Import the fixture into a test module (`from llm_support import llama_server`). It is module-scoped, so a
server lives only as long as the module that uses it. n_ctx stays small because that server keeps logits for
every position (for echo/logprobs): n_ctx x 262k floats, 0.5 GB at 512.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lmtailor.llm.embedded import MODEL_NAME, gguf_path
from lmtailor.llm.openai_http import OpenAIBackend

# llama-cpp-python's server defaults to repeat_penalty 1.1; the OpenAI API (and the embedded backend) use none.
SERVER_EXTRA = {"repeat_penalty": 1.0}


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_backend(base_url: str, **kwargs: Any) -> OpenAIBackend:
    """The HTTP backend for the `llama_server` fixture, sampling as the embedded backend does."""
    return OpenAIBackend(base_url, MODEL_NAME, extra_body=SERVER_EXTRA, **kwargs)


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (…/v1) of llama-cpp-python's OpenAI-compatible server on the embedded Gemma 3 270M."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path()), "--model_alias", MODEL_NAME,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "512", "--n_threads", "2",
        "--chat_format", "gemma",  # the GGUF carries no chat template; this is Gemma's turn format
    ]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_up(base_url, proc, log_path)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_until_up(base_url: str, proc: subprocess.Popen[bytes], log_path: Path, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama-cpp-python's server exited with {proc.returncode}:\n{_tail(log_path)}")
        try:
            if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"llama-cpp-python's server did not answer within {limit:g} s:\n{_tail(log_path)}")


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]
