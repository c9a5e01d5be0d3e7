"""One contract, three backends: every test here runs on the embedded llama.cpp model, on llama-cpp-python's
OpenAI-compatible server serving the same GGUF over HTTP, and on transformers with the same weights.

Each backend answers the shared prompts once per module (`Answers`); the tests then check those answers. The
HTTP server scores log-likelihoods slowly (it sorts the 262k-token vocabulary for every prompt token), so
nothing is asked twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import pytest
from llm_support import llama_server, server_backend  # noqa: F401 - llama_server is a fixture
from pydantic import BaseModel

from lmtailor.llm.backend import Backend
from lmtailor.llm.cache import ResponseCache
from lmtailor.llm.client import LLM
from lmtailor.llm.llamacpp import LlamaCppBackend
from lmtailor.llm.transformers_backend import TransformersBackend
from lmtailor.llm.types import Completion, GenParams, LogLik

# Prompts whose greedy answers win by a clear margin at every step: llama.cpp's logits move a little with the
# batch shape (a prompt evaluated whole, or after a cached prefix), which flips near ties between tokens.
COUNTING = "One, two, three, four,"
OPPOSITE = "The opposite of hot is"
CHAT = [{"role": "user", "content": "Say hello."}]
PROMPTS = [COUNTING, CHAT, OPPOSITE]
PARAMS = GenParams(max_tokens=8)
CONTEXT = "The capital of France is"  # for log-likelihoods


class Answers:
    """One backend's answers to the shared prompts, each computed on first use."""

    def __init__(self, backend: Backend):
        self.backend = backend

    @cached_property
    def greedy(self) -> list[Completion]:
        return self.backend.generate(PROMPTS, PARAMS)

    @cached_property
    def greedy_start(self) -> str:
        """The first three tokens greedy decoding writes after COUNTING: a continuation that must be greedy."""
        return self.backend.generate([COUNTING], GenParams(max_tokens=3))[0].text

    @cached_property
    def logliks(self) -> dict[str, LogLik]:
        pairs = [(CONTEXT, " Paris"), (CONTEXT, " Berlin"), (COUNTING, self.greedy_start)]
        return dict(zip(["paris", "berlin", "greedy"], self.backend.loglikelihood(pairs), strict=True))


@pytest.fixture(scope="module")
def llamacpp_answers() -> Iterator[Answers]:
    backend = LlamaCppBackend(n_ctx=512)
    yield Answers(backend)
    backend.close()


@pytest.fixture(scope="module")
def openai_answers(llama_server: str) -> Iterator[Answers]:  # noqa: F811 - the imported fixture
    backend = server_backend(llama_server)
    yield Answers(backend)
    backend.close()


@pytest.fixture(scope="module")
def transformers_answers() -> Iterator[Answers]:
    backend = TransformersBackend()
    yield Answers(backend)
    backend.close()


@pytest.fixture(scope="module", params=["llamacpp", "openai", "transformers"])
def answers(request: pytest.FixtureRequest) -> Answers:
    return request.getfixturevalue(f"{request.param}_answers")


def test_a_batch_of_text_and_chat_prompts_gets_one_completion_each_in_order(answers: Answers) -> None:
    out, count = answers.greedy, answers.backend.count_tokens
    assert len(out) == len(PROMPTS)
    assert all(c.text.strip() and 1 <= c.completion_tokens <= PARAMS.max_tokens for c in out)
    # The two text prompts differ in length; each completion reports its own prompt's tokens (plus any BOS).
    assert count(COUNTING) != count(OPPOSITE)
    added = out[0].prompt_tokens - count(COUNTING)
    assert added in (0, 1)
    assert out[2].prompt_tokens - count(OPPOSITE) == added
    assert out[1].prompt_tokens > count(CHAT[0]["content"])  # the chat turn markers count too


def test_temperature_zero_is_deterministic_whatever_the_batch_order(answers: Answers) -> None:
    again = answers.backend.generate(PROMPTS[::-1], PARAMS)
    assert [c.text for c in again] == [c.text for c in answers.greedy[::-1]]


def test_max_tokens_ends_the_completion_with_finish_reason_length(answers: Answers) -> None:
    first = answers.greedy[0]
    assert (first.finish_reason, first.completion_tokens) == ("length", PARAMS.max_tokens)


def test_generation_stops_before_the_first_stop_sequence(answers: Answers) -> None:
    text = answers.greedy[0].text
    stop = text.split()[2]  # a word well inside the greedy answer
    out = answers.backend.generate([COUNTING], PARAMS.model_copy(update={"stop": ("never-written", stop)}))[0]
    assert out.text == text[: text.index(stop)]
    assert out.finish_reason == "stop"


def test_loglikelihood_sums_negative_logprobs_and_ranks_the_likely_continuation_first(answers: Answers) -> None:
    ll = answers.logliks
    assert all(x.logprob < 0 and x.tokens >= 1 for x in ll.values())
    assert ll["paris"].logprob > ll["berlin"].logprob


def test_is_greedy_agrees_with_greedy_generation(answers: Answers) -> None:
    ll = answers.logliks
    assert ll["greedy"].is_greedy
    assert ll["greedy"].tokens == 3
    assert not ll["berlin"].is_greedy


def test_count_tokens_is_consistent(answers: Answers) -> None:
    count = answers.backend.count_tokens
    assert count("") == 0
    assert count("Hello") + count(" world") == count("Hello world")
    assert count(CONTEXT + " Paris, a large city in Europe") > count(CONTEXT) > 0


def test_the_client_serves_a_repeated_call_from_the_cache(answers: Answers, tmp_path: Path) -> None:
    llm = LLM(answers.backend, ResponseCache(tmp_path / "cache.sqlite"))
    params = GenParams(max_tokens=4)
    first = llm.generate(PROMPTS[:2], params)
    paid = (llm.usage.calls, llm.usage.prompt_tokens, llm.usage.completion_tokens)
    second = llm.generate(PROMPTS[:2], params)
    assert [c.text for c in second] == [c.text for c in first]
    assert all(c.cached for c in second) and not any(c.cached for c in first)
    assert llm.usage.cached_calls == 2
    assert (llm.usage.calls, llm.usage.prompt_tokens, llm.usage.completion_tokens) == paid
    assert paid[0] == 2 and paid[1] > 0 and paid[2] > 0


class Colour(BaseModel):
    name: str


FEW_SHOT_JSON = (
    'Answer with JSON.\nQ: What colour is the sky?\nA: {"name": "blue"}\n'
    'Q: What colour is grass?\nA: {"name": "green"}\nQ: What colour is snow?\nA:'
)


def test_structured_answers_are_validated_pydantic_objects(answers: Answers) -> None:
    llm = LLM(answers.backend)
    [got] = llm.structured([FEW_SHOT_JSON], Colour, GenParams(max_tokens=16, stop=("\n",)))
    assert isinstance(got.value, Colour) and got.value.name, got
    if answers.backend.supports_schema:
        # The grammar makes even a prompt that never mentions JSON answer with a valid object, first time.
        [plain] = llm.structured([CHAT], Colour, GenParams(max_tokens=24))
        assert isinstance(plain.value, Colour) and plain.tries == 1, plain


def test_the_server_agrees_with_llama_cpp_on_the_same_gguf(llamacpp_answers: Answers, openai_answers: Answers) -> None:
    direct, served = llamacpp_answers, openai_answers
    assert [c.to_json() for c in served.greedy] == [c.to_json() for c in direct.greedy]
    for name, ll in direct.logliks.items():
        other = served.logliks[name]
        # The server evaluates the whole text in one batch, the direct backend context and continuation
        # apart, after whatever prefix it has cached; llama.cpp's kernels round differently for each shape.
        assert other.logprob == pytest.approx(ll.logprob, abs=0.05 * ll.tokens), name
        assert (other.is_greedy, other.tokens) == (ll.is_greedy, ll.tokens), name
    for text in (CONTEXT, FEW_SHOT_JSON, "naïve café — 東京"):
        assert served.backend.count_tokens(text) == direct.backend.count_tokens(text)
