"""The response cache: what its keys tell apart, that answers outlive the client and the process, and that a
run killed half way keeps every batch it finished."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_support import free_port

from lmtailor.llm.cache import ResponseCache, cache_key
from lmtailor.llm.client import LLM
from lmtailor.llm.llamacpp import LlamaCppBackend
from lmtailor.llm.openai_http import OpenAIBackend
from lmtailor.llm.types import BackendError, GenParams

PROMPTS = ["One, two, three,", "The opposite of hot is", "Monday, Tuesday,", "A, B, C,", "Red, green,", "Ten, nine,"]
PARAMS = GenParams(max_tokens=4)


@pytest.fixture(scope="module")
def llama() -> Iterator[LlamaCppBackend]:
    backend = LlamaCppBackend(n_ctx=512)
    yield backend
    backend.close()


def test_keys_differ_by_backend_identity_params_and_prompt(llama: LlamaCppBackend) -> None:
    ident, params = llama.identity(), PARAMS.key()
    base = cache_key(ident, "generate", params, "hi")
    variants = [
        cache_key(OpenAIBackend("http://127.0.0.1:8000/v1", llama.model).identity(), "generate", params, "hi"),
        cache_key(OpenAIBackend("http://10.0.0.2:8000/v1", llama.model).identity(), "generate", params, "hi"),
        cache_key({**ident, "lora": ["adapter.gguf", 1, 2]}, "generate", params, "hi"),
        *(
            cache_key(ident, "generate", PARAMS.model_copy(update=change).key(), "hi")
            for change in ({"max_tokens": 5}, {"temperature": 0.7}, {"stop": ("\n",)}, {"seed": 1}, {"top_p": 0.9})
        ),
        cache_key(ident, "generate", PARAMS.model_copy(update={"json_schema": {"type": "object"}}).key(), "hi"),
        cache_key(ident, "generate", params, "hi "),
        cache_key(ident, "generate", params, [{"role": "user", "content": "hi"}]),
        cache_key(ident, "loglikelihood", {}, ["hi", ""]),
    ]
    assert len({base, *variants}) == len(variants) + 1
    assert cache_key(dict(reversed(ident.items())), "generate", params, "hi") == base  # order of fields is moot


def test_another_backend_on_the_same_cache_file_never_gets_these_answers(
    llama: LlamaCppBackend, tmp_path: Path
) -> None:
    cache = ResponseCache(tmp_path / "cache.sqlite")
    LLM(llama, cache).generate(PROMPTS[:1], PARAMS)
    # Same model name, served elsewhere (here: nowhere). A cache hit would hide that nothing answers.
    elsewhere = OpenAIBackend(f"http://127.0.0.1:{free_port()}/v1", llama.model, retries=0)
    with pytest.raises(BackendError, match="nothing answers"):
        LLM(elsewhere, cache).generate(PROMPTS[:1], PARAMS)
    again = LLM(llama, cache)
    again.generate(PROMPTS[:1], PARAMS.model_copy(update={"max_tokens": 5}))
    assert (again.usage.calls, again.usage.cached_calls) == (1, 0)  # other parameters, another answer


def test_answers_persist_across_clients_and_reopened_files(llama: LlamaCppBackend, tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    first_cache = ResponseCache(path)
    first = LLM(llama, first_cache)
    texts = [c.text for c in first.generate(PROMPTS[:2], PARAMS)]
    scores = first.loglikelihood([("The opposite of hot is", " cold")])
    first_cache.close()

    second = LLM(llama, ResponseCache(path))
    again = second.generate(PROMPTS[:2], PARAMS)
    assert [c.text for c in again] == texts and all(c.cached for c in again)
    assert second.loglikelihood([("The opposite of hot is", " cold")]) == scores
    assert (second.usage.calls, second.usage.cached_calls, second.usage.prompt_tokens) == (0, 3, 0)


RUN = """
import sys
from lmtailor.llm.cache import ResponseCache
from lmtailor.llm.client import LLM
from lmtailor.llm.llamacpp import LlamaCppBackend
from lmtailor.llm.types import GenParams
llm = LLM(LlamaCppBackend(n_ctx=512, n_parallel=1), ResponseCache(sys.argv[1]))
llm.generate(sys.argv[2:], GenParams(max_tokens=8))
"""
# One sequence at a time: the backend plans greedy calls of CALL_PER_SLOT prompts (8), each cached when it
# ends, and a call takes about a second, long enough to be killed after one.
MANY = [f"{p} ({i})" for i in range(4) for p in PROMPTS]


def _rows(path: Path) -> int:
    try:
        with sqlite3.connect(path) as db:
            return db.execute("SELECT count(*) FROM responses").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_a_run_killed_half_way_keeps_its_finished_batches(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", RUN, str(path), *MANY], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _rows(path) < 8 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    kept = _rows(path)
    assert kept in (8, 16), f"the run kept {kept} of {len(MANY)} answers; it should die between calls of 8"

    sequential = LlamaCppBackend(n_ctx=512, n_parallel=1)
    try:
        resumed = LLM(sequential, ResponseCache(path))
        out = resumed.generate(MANY, GenParams(max_tokens=8))
    finally:
        sequential.close()
    assert len(out) == len(MANY)
    assert (resumed.usage.cached_calls, resumed.usage.calls) == (kept, len(MANY) - kept)
    assert sum(c.cached for c in out) == kept
