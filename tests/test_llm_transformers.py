"""The embedded model converted to a Hugging Face folder, and the transformers backend on it.

What the shared contract (test_llm_contract.py) does not cover: the conversion and its cache, the tokenizer
giving llama.cpp's ids, the chat template, batching (padding must not change an answer; the backend plans
the client's batches) and a model wrapped in memory. As there, the tests check how answers relate, never
what the model happens to write.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from lmtailor.llm.backend import gemma_chat
from lmtailor.llm.cache import ResponseCache
from lmtailor.llm.client import LLM
from lmtailor.llm.convert import build_once, embedded_hf_dir
from lmtailor.llm.llamacpp import LlamaCppBackend
from lmtailor.llm.transformers_backend import TransformersBackend
from lmtailor.llm.types import BackendError, GenParams

pytestmark = pytest.mark.model  # loads a model to generate, score or train: not in the fast tier

TEXTS = [
    "<start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n",
    "a<end_of_turn>b  c\n\n\nd",
    "   indented\tcode = f(x) ** 2  # 3.14159",
    "Ünïcödé text — 東京, emoji 🙂",
]
CHAT = [
    {"role": "system", "content": "Answer briefly."},
    {"role": "user", "content": "What is the boiling point of water?"},
    {"role": "assistant", "content": "100 °C at sea level."},
    {"role": "user", "content": "And of ethanol?"},
]


@pytest.fixture(scope="module")
def hf_dir() -> Path:
    return embedded_hf_dir()


@pytest.fixture(scope="module")
def backend(hf_dir: Path) -> Iterator[TransformersBackend]:
    b = TransformersBackend()
    yield b
    b.close()


@pytest.fixture(scope="module")
def llama() -> Iterator[LlamaCppBackend]:
    b = LlamaCppBackend(n_ctx=512)
    yield b
    b.close()


def test_conversion_gives_a_plain_hf_folder(hf_dir: Path) -> None:
    names = {p.name for p in hf_dir.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} <= names
    config = AutoConfig.from_pretrained(hf_dir)
    assert config.model_type == "gemma3_text"
    assert getattr(config, "quantization_config", None) is None  # loadable and savable as a plain model
    generation = json.loads((hf_dir / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [1, 106]  # <eos> and <end_of_turn>, as llama.cpp stops
    # Nothing half-built is left beside it.
    assert not [p for p in hf_dir.parent.iterdir() if ".tmp" in p.name]


def test_second_call_returns_the_cached_folder(hf_dir: Path) -> None:
    start = time.perf_counter()
    assert embedded_hf_dir() == hf_dir
    assert time.perf_counter() - start < 1


def test_tokenizer_gives_llamacpp_ids(hf_dir: Path, llama: LlamaCppBackend, shared_data: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    with (shared_data / "alpaca" / "alpaca_data_52k.jsonl").open() as f:
        records = [json.loads(next(f)) for _ in range(20)]
    texts = TEXTS + [f"{r['instruction']}\n\n{r['input']}\n\n{r['output']}" for r in records]
    for text in texts:
        assert tokenizer(text).input_ids == llama._llm.tokenize(text.encode(), add_bos=True, special=True), text
    assert tokenizer("<start_of_turn><end_of_turn>", add_special_tokens=False).input_ids == [105, 106]


def test_chat_template_is_gemmas(hf_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    rendered = tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    assert rendered == "<bos>" + gemma_chat(CHAT)


def test_batched_generation_equals_one_at_a_time(backend: TransformersBackend) -> None:
    # Prompts of different lengths: left padding the two shorter ones must change nothing.
    prompts = ["The capital of France is", "Once upon a time, there", [{"role": "user", "content": "Say hello."}]]
    params = GenParams(max_tokens=6)
    together = backend.generate(prompts, params)
    alone = [backend.generate([p], params)[0] for p in prompts[:2]]
    assert [c.to_json() for c in together[:2]] == [c.to_json() for c in alone]
    for c in together:  # cut by max_tokens after exactly 6 tokens, or ended by the model before
        if c.finish_reason == "length":
            assert c.completion_tokens == 6, c
        else:
            assert c.finish_reason == "stop" and c.completion_tokens <= 6, c
    assert together[0].prompt_tokens == 1 + backend.count_tokens("The capital of France is")


def test_stop_strings_cut_and_end_generation(backend: TransformersBackend) -> None:
    prompt = "Question: What is 2+2?\nAnswer:"
    free = backend.generate([prompt], GenParams(max_tokens=12))[0]
    words = free.text.split()
    # a word inside the free answer, whatever the model wrote; with no word, a stop never written changes nothing
    stop = words[len(words) // 2] if words else "never-written"
    stopped = backend.generate([prompt], GenParams(max_tokens=12, stop=("never-written", stop)))[0]
    if stop in free.text:
        assert stopped.finish_reason == "stop"
        assert stopped.text == free.text[: free.text.index(stop)]
        assert stopped.completion_tokens <= free.completion_tokens
    else:
        assert stopped.to_json() == free.to_json()


def test_seeded_sampling_repeats(backend: TransformersBackend) -> None:
    params = GenParams(max_tokens=5, temperature=1.0, seed=7)
    first = backend.generate(["Once upon a time"], params)[0].text
    assert backend.generate(["Once upon a time"], params)[0].text == first


def test_loglikelihood_batched_equals_single(backend: TransformersBackend) -> None:
    pairs = [("The capital of France is", " Paris"), ("The capital of France is", " London"), ("2+2=", "4 and 3+3=6")]
    together = backend.loglikelihood(pairs)
    alone = [backend.loglikelihood([p])[0] for p in pairs]
    for a, b in zip(together, alone, strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-3) and a.tokens == b.tokens
        assert a.logprob <= 0 and a.is_greedy == b.is_greedy
    # The boundary inside a token: the context's trailing space joins the continuation's first token.
    split = backend.loglikelihood([("The capital of France is ", "Paris")])[0]
    assert split.tokens == 1 and split.logprob == pytest.approx(together[0].logprob, abs=1e-3)


def test_rolling_batched_equals_single_and_is_cut_at_max_tokens(backend: TransformersBackend) -> None:
    texts = ["The capital of France is Paris, a large city.", "Once upon a time", "Hi", ""]
    together = backend.loglikelihood_rolling(texts)
    alone = [backend.loglikelihood_rolling([t])[0] for t in texts]
    for a, b, text in zip(together, alone, texts, strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-3) and a.tokens == b.tokens == backend.count_tokens(text)
    cut = backend.loglikelihood_rolling(texts[:1], max_tokens=5)[0]
    assert cut.tokens == 4 and cut.logprob == pytest.approx(
        backend.loglikelihood_rolling(["The capital of France"])[0].logprob, abs=1e-3
    )
    with pytest.raises(BackendError, match="longer than the window"):
        backend.loglikelihood_rolling(["word " * 40_000])


def test_the_client_batches_by_length_as_the_backend_plans(backend: TransformersBackend) -> None:
    """The backend plans the client's batches: sorted by token length, and the four answers after one question
    in one batch (one forward pass), so the cache is written batch by batch with little padding."""
    prompts = ["a b c d e f g", "a", "a b c", "a b"]
    assert backend.batches("generate", prompts) == [[1, 3, 2, 0]]
    pairs = [(p, f" {letter}") for p in prompts for letter in "AB"]
    small = TransformersBackend.wrap(backend._lm, backend.tokenizer, "m", score_batch_size=2)
    assert small.batches("loglikelihood", pairs) == [[2, 3, 6, 7], [4, 5, 0, 1]]
    assert small.batches("loglikelihood_rolling", ["a b c", "", "a"], max_tokens=2) == [[1], [0, 2]]
    llm = LLM(small)
    answers = [(x.logprob, x.is_greedy, x.tokens) for x in llm.loglikelihood(pairs)]  # the time each took differs
    assert answers == [(x.logprob, x.is_greedy, x.tokens) for x in small.loglikelihood(pairs)]


def test_a_model_in_memory_answers_as_loaded_and_keeps_its_mode(
    backend: TransformersBackend, hf_dir: Path, tmp_path: Path
) -> None:
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    wrapped = TransformersBackend.wrap(model, AutoTokenizer.from_pretrained(hf_dir), "tuned")
    model.train()  # as a model is while it trains: dropout on
    params = GenParams(max_tokens=5)
    assert [c.to_json() for c in wrapped.generate(["Once upon a time"], params)] == [
        c.to_json() for c in backend.generate(["Once upon a time"], params)
    ]
    pair, text = ("The capital of France is", " Paris"), "Once upon a time"
    assert wrapped.loglikelihood([pair])[0].logprob == pytest.approx(backend.loglikelihood([pair])[0].logprob, abs=1e-4)
    assert wrapped.loglikelihood_rolling([text])[0].logprob == pytest.approx(
        backend.loglikelihood_rolling([text])[0].logprob, abs=1e-4
    )
    assert model.training
    assert wrapped.identity() == {"kind": "transformers", "model": "tuned", "in_memory": True}
    with pytest.raises(ValueError, match="cannot be cached"):  # its answers change as it trains
        LLM(wrapped, ResponseCache(tmp_path / "cache.sqlite"))


def test_identity_and_counting(backend: TransformersBackend, hf_dir: Path) -> None:
    ident = backend.identity()
    assert ident["kind"] == "transformers" and ident["folder"] == hf_dir.name and len(ident["fingerprint"]) == 16
    assert backend.count_tokens("<start_of_turn>") == 1
    assert backend.count_tokens("") == 0


def test_not_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match=str(tmp_path)):
        TransformersBackend(tmp_path)


BUILD = """
import os, sys, time
from pathlib import Path
from lmtailor.llm.convert import build_once

def build(out):
    (out / "builder").write_text(str(os.getpid()))
    time.sleep(3)  # longer than a Python start, so the second process finds the lock held

print(build_once(Path(sys.argv[1]), build))
"""


def test_two_processes_build_once(tmp_path: Path) -> None:
    target = tmp_path / "folder"
    procs = [
        subprocess.Popen([sys.executable, "-c", BUILD, str(target)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert outputs == [str(target), str(target)]
    assert (target / "builder").read_text() in {str(p.pid) for p in procs}
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".lock"] == ["folder"]


def test_failed_build_leaves_nothing(tmp_path: Path) -> None:
    def fail(out: Path) -> None:
        (out / "partial").write_text("x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        build_once(tmp_path / "folder", fail)
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".lock"] == []
