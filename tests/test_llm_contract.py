"""One contract, three backends: every test here runs on the embedded llama.cpp model, on llama-cpp-python's
OpenAI-compatible server serving the same GGUF over HTTP, and on transformers with the same weights.

Each backend answers the shared prompts once per module (`Answers`); the tests then check those answers. The
HTTP server scores log-likelihoods slowly (it sorts the 262k-token vocabulary for every prompt token), so
nothing is asked twice.

What the model writes is not the contract: greedy text differs from one CPU to another (llama.cpp is built for
the machine), so the tests check how answers relate (a shorter run is a prefix of a longer one, a stop string
cuts where it first appears, a greedy continuation is scored as greedy) and never what they say.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import pytest
from llm_support import llama_server, server_backend  # noqa: F401 - llama_server is a fixture
from pydantic import BaseModel, Field

from lmtailor.llm.backend import Backend
from lmtailor.llm.cache import ResponseCache
from lmtailor.llm.client import LLM, parse_json
from lmtailor.llm.llamacpp import LlamaCppBackend
from lmtailor.llm.transformers_backend import TransformersBackend
from lmtailor.llm.types import Completion, GenParams, LogLik

pytestmark = pytest.mark.model  # loads a model to generate, score or train: not in the fast tier

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
    def greedy_start_completion(self) -> Completion:
        """At most three tokens of greedy decoding after COUNTING."""
        return self.backend.generate([COUNTING], GenParams(max_tokens=3))[0]

    @property
    def greedy_start(self) -> str:
        """The text greedy decoding writes first after COUNTING: a continuation that must be greedy."""
        return self.greedy_start_completion.text

    @cached_property
    def next_token(self) -> str:
        """The one token greedy decoding writes after CONTEXT."""
        return self.backend.generate([CONTEXT], GenParams(max_tokens=1))[0].text

    @cached_property
    def logliks(self) -> dict[str, LogLik]:
        pairs = [(CONTEXT, " Paris"), (CONTEXT, " Berlin"), (COUNTING, self.greedy_start)]
        return dict(zip(["paris", "berlin", "greedy"], self.backend.loglikelihood(pairs), strict=True))

    @cached_property
    def rolling(self) -> dict[str, LogLik]:
        """Whole texts: the context, the context with " Paris", and that cut back to the context's length."""
        texts = [CONTEXT, CONTEXT + " Paris", ""]
        whole = self.backend.loglikelihood_rolling(texts)
        cut = self.backend.loglikelihood_rolling(
            [CONTEXT + " Paris"], max_tokens=self.backend.count_tokens(CONTEXT) + 1
        )
        return dict(zip(["context", "paris", "empty", "cut"], whole + cut, strict=True))


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


def _ended_right(c: Completion, max_tokens: int) -> bool:
    """A completion that stops by max_tokens wrote exactly that many tokens; one that wrote fewer ended by
    itself (EOS or a stop string)."""
    if c.finish_reason == "length":
        return c.completion_tokens == max_tokens
    return c.finish_reason == "stop" and 0 <= c.completion_tokens <= max_tokens


def test_a_batch_of_text_and_chat_prompts_gets_one_completion_each_in_order(answers: Answers) -> None:
    out, count = answers.greedy, answers.backend.count_tokens
    assert len(out) == len(PROMPTS)
    assert all(_ended_right(c, PARAMS.max_tokens) for c in out), out
    # The two text prompts differ in length; each completion reports its own prompt's tokens (plus any BOS).
    assert count(COUNTING) != count(OPPOSITE)
    added = out[0].prompt_tokens - count(COUNTING)
    assert added in (0, 1)
    assert out[2].prompt_tokens - count(OPPOSITE) == added
    assert out[1].prompt_tokens > count(CHAT[0]["content"])  # the chat turn markers count too


def test_temperature_zero_is_deterministic_whatever_the_batch_order(answers: Answers) -> None:
    again = answers.backend.generate(PROMPTS[::-1], PARAMS)
    assert [c.text for c in again] == [c.text for c in answers.greedy[::-1]]


def test_max_tokens_cuts_the_greedy_answer_short_with_finish_reason_length(answers: Answers) -> None:
    """Three tokens of greedy decoding are the start of eight: cut by max_tokens, not ended."""
    short, long = answers.greedy_start_completion, answers.greedy[0]
    assert _ended_right(short, 3) and long.text.startswith(short.text)
    if long.completion_tokens > 3:  # the longer answer went past three tokens, so the shorter one was cut
        assert (short.finish_reason, short.completion_tokens) == ("length", 3)
    else:  # it ended by itself within three tokens: the same text both times
        assert short.text == long.text


def test_generation_stops_before_the_first_stop_sequence(answers: Answers) -> None:
    text = answers.greedy[0].text
    words = text.split()
    # a word inside the greedy answer, whatever it is; with no word, a stop never written changes nothing
    stop = words[len(words) // 2] if words else "never-written"
    out = answers.backend.generate([COUNTING], PARAMS.model_copy(update={"stop": ("never-written", stop)}))[0]
    if stop in text:
        assert out.text == text[: text.index(stop)] and out.finish_reason == "stop"
    else:
        assert out.to_json() == answers.greedy[0].to_json()


def test_loglikelihood_sums_negative_logprobs_and_ranks_the_greedy_token_first(answers: Answers) -> None:
    ll = answers.logliks
    assert all(x.logprob <= 0 and x.tokens >= 1 for x in ll.values())
    paris, berlin = ll["paris"], ll["berlin"]
    assert paris.tokens == berlin.tokens == 1  # one token each: compared at the same position
    assert not (paris.is_greedy and berlin.is_greedy)
    if paris.is_greedy or berlin.is_greedy:  # the greedy token is the most likely one
        top, other = (paris, berlin) if paris.is_greedy else (berlin, paris)
        assert top.logprob > other.logprob


def test_is_greedy_agrees_with_greedy_generation(answers: Answers) -> None:
    ll, start = answers.logliks, answers.greedy_start_completion
    assert ll["greedy"].is_greedy
    assert ll["greedy"].tokens == start.completion_tokens
    # a one-token continuation is greedy exactly when greedy decoding writes it
    assert ll["paris"].is_greedy == (answers.next_token == " Paris")
    assert ll["berlin"].is_greedy == (answers.next_token == " Berlin")


def test_rolling_loglikelihood_of_a_text_is_its_context_then_its_continuation(answers: Answers) -> None:
    rolling, paris = answers.rolling, answers.logliks["paris"]
    count = answers.backend.count_tokens(CONTEXT)
    # Every token after the first is scored: with BOS that is each of the text's own; a server that lists no
    # BOS (llama-cpp-python's) leaves the first unscored.
    assert rolling["context"].tokens in (count, count - 1) and rolling["context"].logprob < 0
    assert rolling["paris"].tokens == rolling["context"].tokens + paris.tokens
    # chain rule: log P(context + " Paris") = log P(context) + log P(" Paris" | context)
    chained = rolling["context"].logprob + paris.logprob
    assert rolling["paris"].logprob == pytest.approx(chained, abs=0.05 * rolling["paris"].tokens)
    assert rolling["empty"].to_json() == {"logprob": 0.0, "is_greedy": True, "tokens": 0}
    # cut to BOS + the context's tokens: as many scored as the context's
    assert rolling["cut"].tokens == count
    if rolling["context"].tokens == count:  # the cut text is the context itself
        assert rolling["cut"].logprob == pytest.approx(rolling["context"].logprob, abs=0.05 * count)


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
    assert paid == (2, sum(c.prompt_tokens for c in first), sum(c.completion_tokens for c in first))
    assert paid[1] > 0


class Colour(BaseModel):
    name: str = Field(max_length=12)  # bounded, so the grammar's object always ends within max_tokens


FEW_SHOT_JSON = (
    'Answer with JSON.\nQ: What colour is the sky?\nA: {"name": "blue"}\n'
    'Q: What colour is grass?\nA: {"name": "green"}\nQ: What colour is snow?\nA:'
)
# Enough for the longest object the grammar allows: 12 characters of up to 4 byte tokens each, plus the braces,
# key, quotes and optional spaces. A greedy answer ends long before.
JSON_PARAMS = GenParams(max_tokens=72)


def test_structured_answers_are_validated_pydantic_objects(answers: Answers) -> None:
    llm = LLM(answers.backend)
    [got] = llm.structured([FEW_SHOT_JSON], Colour, JSON_PARAMS.model_copy(update={"stop": ("\n",)}))
    # Without a grammar, whether the model writes valid JSON is up to it; either way the answer is a validated
    # object, or no object after every try with the reason it failed.
    assert 1 <= got.tries <= 3, got
    if got.value is None:
        assert got.tries == 3 and got.error, got
    else:
        assert isinstance(got.value, Colour) and parse_json(got.raw, Colour) == (got.value, ""), got
    if answers.backend.supports_schema:
        # The grammar makes every answer a valid object first time, even to a prompt that never mentions JSON.
        assert isinstance(got.value, Colour) and got.tries == 1, got
        [plain] = llm.structured([CHAT], Colour, JSON_PARAMS)
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
    # The server gives its first listed token, the text's first (it lists no BOS), no logprob: it scores the
    # rest of the text, as the direct backend scores it after that token.
    first, rest = CONTEXT.split(" ", 1)
    [after_first] = direct.backend.loglikelihood([(first, " " + rest + " Paris")])
    assert served.rolling["paris"].tokens == after_first.tokens
    assert served.rolling["paris"].logprob == pytest.approx(after_first.logprob, abs=0.05 * after_first.tokens)
