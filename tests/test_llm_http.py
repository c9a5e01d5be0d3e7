"""The HTTP backend's manners: retries and backoff, Retry-After, timeouts, unreachable and nonsense-answering
servers, concurrency, rate limit, keys and cost. Misbehaving servers are small stdlib HTTP servers on
127.0.0.1 that answer as each test scripts them; well-behaved answers come from llama-cpp-python's server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from llm_support import free_port, llama_server, server_backend  # noqa: F401 - llama_server is a fixture

from lmtailor.llm.cache import ResponseCache
from lmtailor.llm.client import LLM
from lmtailor.llm.config import PRICES, OpenAIConfig, open_backend
from lmtailor.llm.openai_http import OpenAIBackend, _retry_after_seconds
from lmtailor.llm.types import BackendError, GenParams

pytestmark = pytest.mark.model  # loads a model to generate, score or train: not in the fast tier

OK = {"choices": [{"text": "ok", "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
Reply = tuple[int, dict[str, str], bytes]


def reply(status: int = 200, body: Any = OK, **headers: str) -> Reply:
    return status, headers, body if isinstance(body, bytes) else json.dumps(body).encode()


class TinyServer:
    """Answers the n-th request (0-based) with `answer(n, path)` after `delay` seconds, and records what came."""

    def __init__(self, answer: Callable[[int, str], Reply], delay: float = 0.0):
        self.answer, self.delay = answer, delay
        self.arrivals: list[float] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        tiny = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                with tiny._lock:
                    n = len(tiny.arrivals)
                    tiny.arrivals.append(time.monotonic())
                    tiny.paths.append(self.path)
                    tiny.headers.append(dict(self.headers))
                    tiny.in_flight += 1
                    tiny.max_in_flight = max(tiny.max_in_flight, tiny.in_flight)
                time.sleep(tiny.delay)
                status, headers, body = tiny.answer(n, self.path)
                with tiny._lock:
                    tiny.in_flight -= 1
                try:
                    self.send_response(status)
                    for key, value in {"content-type": "application/json", **headers}.items():
                        self.send_header(key, value)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False  # a handler still sleeping in a timeout test must not hold us
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def backend(self, **kwargs: Any) -> OpenAIBackend:
        return OpenAIBackend(self.url, "tiny", **{"backoff": 0.01, **kwargs})

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def tiny() -> Iterator[Callable[..., TinyServer]]:
    servers: list[TinyServer] = []

    def start(answer: Callable[[int, str], Reply], delay: float = 0.0) -> TinyServer:
        servers.append(TinyServer(answer, delay))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


P = GenParams(max_tokens=4)


def test_server_errors_are_retried_with_growing_backoff_until_it_answers(tiny: Callable[..., TinyServer]) -> None:
    server = tiny(lambda n, _: reply(503, {"error": {"message": "busy"}}) if n < 3 else reply())
    [out] = server.backend(retries=3, backoff=0.1).generate(["hi"], P)
    assert (out.text, out.prompt_tokens, out.completion_tokens) == ("ok", 3, 1)
    gaps = [b - a for a, b in zip(server.arrivals, server.arrivals[1:], strict=False)]
    assert len(gaps) == 3
    for i, gap in enumerate(gaps):  # jittered between half and all of backoff * 2^i
        assert 0.5 * 0.1 * 2**i - 0.01 <= gap <= 0.1 * 2**i + 0.25, gaps


def test_errors_past_the_last_retry_name_the_url_and_the_server_message(tiny: Callable[..., TinyServer]) -> None:
    server = tiny(lambda n, _: reply(500, {"error": {"message": "model exploded"}}))
    with pytest.raises(BackendError, match=r"/v1/completions answered HTTP 500: model exploded \(3 tries\)") as e:
        server.backend(retries=2).generate(["hi"], P)
    assert server.url in str(e.value)
    assert len(server.arrivals) == 3


def test_a_client_error_is_not_retried(tiny: Callable[..., TinyServer]) -> None:
    server = tiny(lambda n, _: reply(400, {"error": {"message": "max_tokens is too large"}}))
    with pytest.raises(BackendError, match=r"HTTP 400: max_tokens is too large$"):
        server.backend(retries=3).generate(["hi"], P)
    assert len(server.arrivals) == 1


def test_429_waits_as_long_as_retry_after_says(tiny: Callable[..., TinyServer]) -> None:
    slow_down = reply(429, {"error": {"message": "slow down"}}, **{"retry-after": "1"})
    server = tiny(lambda n, _: slow_down if n == 0 else reply())
    [out] = server.backend(retries=2, backoff=0.01).generate(["hi"], P)
    assert out.text == "ok"
    assert server.arrivals[1] - server.arrivals[0] >= 0.95  # the backoff alone would have waited 10 ms


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    assert _retry_after_seconds("2.5") == 2.5
    assert 8 <= (_retry_after_seconds(formatdate(time.time() + 10, usegmt=True)) or 0) <= 10
    assert _retry_after_seconds("soon") is None and _retry_after_seconds(None) is None


def test_a_server_that_hangs_times_out(tiny: Callable[..., TinyServer]) -> None:
    server = tiny(lambda n, _: reply(), delay=3)
    start = time.monotonic()
    with pytest.raises(BackendError, match=r"/v1/completions did not answer within 0.3 s \(2 tries\)"):
        server.backend(timeout=0.3, retries=1).generate(["hi"], P)
    assert time.monotonic() - start < 2
    assert len(server.arrivals) == 2


def test_nothing_listening_says_so_with_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    backend = OpenAIBackend(url, "m", retries=1, backoff=0.01)
    with pytest.raises(BackendError, match=f"nothing answers at {url}/completions .*is the server running"):
        backend.generate(["hi"], P)


@pytest.mark.parametrize(
    ("body", "prompt", "message"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "hi", "answered something that is not JSON: '<html><body>502"),
        ({"result": "fine"}, "hi", r"answered JSON without choices\[0\].text .*result"),
        ({"choices": []}, "hi", r"without choices\[0\].text"),
        (OK, [{"role": "user", "content": "hi"}], r"/chat/completions answered JSON without choices\[0\].message"),
    ],
)
def test_nonsense_is_named_with_the_url_and_the_start_of_the_body(
    tiny: Callable[..., TinyServer], body: Any, prompt: Any, message: str
) -> None:
    server = tiny(lambda n, _: reply(200, body))
    with pytest.raises(BackendError, match=message) as e:
        server.backend().generate([prompt], P)
    assert server.url in str(e.value)


def test_a_server_without_prompt_logprobs_cannot_score_continuations_or_texts(
    tiny: Callable[..., TinyServer],
) -> None:
    server = tiny(lambda n, _: reply())
    with pytest.raises(BackendError, match=r"returned no prompt logprobs.*cannot score continuations"):
        server.backend().loglikelihood([("The capital of France is", " Paris")])
    with pytest.raises(BackendError, match=r"returned no prompt logprobs.*cannot score texts"):
        server.backend().loglikelihood_rolling(["The capital of France is Paris"])


def test_a_server_without_a_tokenize_endpoint_says_so(tiny: Callable[..., TinyServer]) -> None:
    server = tiny(lambda n, _: reply(404, {"detail": "Not Found"}))
    with pytest.raises(BackendError, match="has no tokenize endpoint"):
        server.backend().count_tokens("hello")
    assert server.paths == ["/extras/tokenize", "/tokenize"]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_batch_keeps_up_to_concurrency_requests_in_flight(tiny: Callable[..., TinyServer], concurrency: int) -> None:
    server = tiny(lambda n, _: reply(body={**OK, "choices": [{"text": f"answer {n}"}]}), delay=0.25)
    prompts = [f"prompt {i}" for i in range(2 * concurrency)]
    start = time.monotonic()
    out = server.backend(concurrency=concurrency).generate(prompts, P)
    assert len(out) == len(prompts)
    assert server.max_in_flight == concurrency
    assert time.monotonic() - start < 2 * 0.25 + 0.5  # two rounds, not one request after another


def test_the_rate_limit_spaces_requests(tiny: Callable[..., TinyServer]) -> None:
    server = tiny(lambda n, _: reply())
    server.backend(concurrency=4, rate_limit=5).generate([f"p{i}" for i in range(6)], P)
    gaps = [b - a for a, b in zip(server.arrivals, server.arrivals[1:], strict=False)]
    assert min(gaps) >= 0.18, gaps  # 5 per second: one every 0.2 s
    assert server.arrivals[-1] - server.arrivals[0] >= 0.95


def test_the_key_comes_from_the_named_environment_variable(
    tiny: Callable[..., TinyServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = tiny(lambda n, _: reply())
    monkeypatch.delenv("LMTAILOR_TEST_KEY", raising=False)
    server.backend(api_key_env="LMTAILOR_TEST_KEY").generate(["hi"], P)
    monkeypatch.setenv("LMTAILOR_TEST_KEY", "sk-test-123")
    server.backend(api_key_env="LMTAILOR_TEST_KEY").generate(["hi"], P)
    auth = [{k.lower(): v for k, v in h.items()}.get("authorization") for h in server.headers]
    assert auth == [None, "Bearer sk-test-123"]


def test_cost_is_accounted_from_the_servers_usage_and_a_rerun_costs_nothing(
    llama_server: str,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    price = (100.0, 200.0)  # USD per million prompt / completion tokens
    prompts = ["One, two, three,", "The opposite of hot is"]
    llm = LLM(server_backend(llama_server, price=price), ResponseCache(tmp_path / "cache.sqlite"))
    out = llm.generate(prompts, P)
    u = llm.usage
    assert u.prompt_tokens == sum(c.prompt_tokens for c in out) > 0
    assert u.completion_tokens == sum(c.completion_tokens for c in out) > 0
    assert u.cost_usd == pytest.approx((u.prompt_tokens * price[0] + u.completion_tokens * price[1]) / 1e6)
    paid = u.cost_usd
    llm.generate(prompts, P)
    assert (llm.usage.cost_usd, llm.usage.cached_calls) == (paid, 2)


def test_the_price_table_fills_in_known_models_and_a_url_is_required() -> None:
    cfg = OpenAIConfig(base_url="http://127.0.0.1:1/v1", model="gpt-4o-mini")
    assert open_backend(cfg).price == PRICES["gpt-4o-mini"]
    with pytest.raises(ValueError, match="needs base_url and model"):
        OpenAIConfig(model="gpt-4o-mini")


def test_the_real_server_explains_a_wrong_path_and_a_schema_dialect_it_does_not_speak(
    llama_server: str,  # noqa: F811 - the imported fixture
) -> None:
    wrong = OpenAIBackend(llama_server.removesuffix("/v1") + "/v2", "gemma-3-270m", retries=0)
    with pytest.raises(BackendError, match=r"/v2/completions answered HTTP 404: .*Not Found"):
        wrong.generate(["hi"], P)
    # OpenAI's and vLLM's dialect; llama-cpp-python's server takes only json_object with a schema, and reports
    # its own validation error as HTTP 500.
    openai_style = server_backend(llama_server, schema_format="json_schema", retries=0)
    schema = {"type": "object", "properties": {"name": {"type": "string"}}}
    with pytest.raises(BackendError, match=r"(?s)HTTP 500: .*Input should be 'text' or 'json_object'.*\(1 try\)"):
        openai_style.generate([[{"role": "user", "content": "hi"}]], P.model_copy(update={"json_schema": schema}))
