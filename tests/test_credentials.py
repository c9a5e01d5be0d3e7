"""Credentials in a base URL never reach a run folder, a log or an error: a real `lmtailor judge` against a
small server on 127.0.0.1 reached through `http://user:s3cret@…/v1`, and the warning for a key about to travel
over plain http to another machine (the backend is only built, so nothing is sent there)."""

from __future__ import annotations

import base64
import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_support import free_port
from test_llm_http import TinyServer, reply
from typer.testing import CliRunner

from lmtailor.cli import app
from lmtailor.curate.recipe import Recipe
from lmtailor.llm.openai_http import InsecureKeyWarning, OpenAIBackend
from lmtailor.llm.types import BackendError, GenParams, redact_url

SECRET = "s3cret"
VERDICT = {"choices": [{"text": '{"score": 4}'}], "usage": {"prompt_tokens": 9, "completion_tokens": 4}}


@pytest.fixture
def server() -> Iterator[TinyServer]:
    s = TinyServer(lambda n, _: reply(body=VERDICT))
    yield s
    s.stop()


def _with_credentials(url: str) -> str:
    return url.replace("http://", f"http://user:{SECRET}@", 1)


def _judge(data: Path, run: Path, base_url: str) -> tuple[int, str]:
    args = ["judge", str(data), "--out", str(run), "--backend", "openai", "--base-url", base_url, "--model", "tiny",
            "--api-key-env", "LMTAILOR_UNSET_KEY", "--rubric", "helpfulness", "--method", "generate", "--no-reasons",
            "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def _files_holding(folder: Path, text: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def test_a_judge_run_writes_no_password_anywhere_and_a_rerun_hits_the_cache(
    server: TinyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LMTAILOR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LMTAILOR_UNSET_KEY", raising=False)
    data = tmp_path / "data.jsonl"
    rows = [{"instruction": f"Name a colour ({i}).", "input": "", "output": "Blue."} for i in range(2)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    url = _with_credentials(server.url)

    code, out = _judge(data, tmp_path / "run", url)
    assert code == 0, out
    assert len(server.paths) == 2 and set(server.paths) == {"/v1/completions"}
    # httpx sends the URL's user and password as basic auth: the real URL is used for the requests
    basic = "Basic " + base64.b64encode(f"user:{SECRET}".encode()).decode()
    assert all({k.lower(): v for k, v in h.items()}["authorization"] == basic for h in server.headers)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    step = manifest["recipe"]["steps"][0]
    shown = redact_url(url)
    assert step["backend"]["base_url"] == shown == server.url.replace("http://", "http://***@", 1)
    assert manifest["steps"][-1]["metrics"]["backend"]["base_url"] == shown
    assert SECRET not in out
    assert _files_holding(tmp_path / "run", SECRET) == []
    assert _files_holding(tmp_path / "cache", SECRET) == []

    code, out = _judge(data, tmp_path / "rerun", url)
    assert code == 0, out
    assert len(server.paths) == 2  # every answer came from the cache
    assert _files_holding(tmp_path / "rerun", SECRET) == []


def test_an_unreachable_server_is_named_without_its_password(tmp_path: Path) -> None:
    url = f"http://user:{SECRET}@127.0.0.1:{free_port()}/v1"
    with pytest.raises(BackendError, match=r"nothing answers at http://\*\*\*@127\.0\.0\.1:\d+/v1") as e:
        OpenAIBackend(url, "m", retries=0).generate(["hi"], GenParams(max_tokens=1))
    assert SECRET not in str(e.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
        ("https://user:pw@host.example/v1", "https://***@host.example/v1"),
        ("http://token@host.example/v1", "http://***@host.example/v1"),
        ("http://u:p@ss@host.example/v1", "http://***@host.example/v1"),  # an unescaped @ in the password
        (
            "https://host.example/v1?api_key=k1&model=x&token=k2",
            "https://host.example/v1?api_key=***&model=x&token=***",
        ),
        ("https://host.example/v1?KEY=k1&access_token=k2#top", "https://host.example/v1?KEY=***&access_token=***#top"),
        ("https://host.example/v1?page=2", "https://host.example/v1?page=2"),
    ],
)
def test_redact_url_hides_userinfo_and_query_secrets(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_the_recipe_dump_redacts_but_the_config_keeps_the_real_url() -> None:
    url = f"http://user:{SECRET}@127.0.0.1:9/v1"
    recipe = Recipe.parse(
        {
            "inputs": [{"path": "data.jsonl"}],
            "steps": [{"step": "judge", "backend": {"kind": "openai", "base_url": url, "model": "m"}}],
        },
        "test",
    )
    assert SECRET not in json.dumps(recipe.model_dump(mode="json")) and SECRET not in recipe.model_dump_json()
    assert recipe.steps[0].backend.base_url == url  # type: ignore[attr-defined]


def _warnings_when_built(url: str, key: str | None, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    if key is None:
        monkeypatch.delenv("LMTAILOR_TEST_KEY", raising=False)
    else:
        monkeypatch.setenv("LMTAILOR_TEST_KEY", key)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        OpenAIBackend(url, "m", api_key_env="LMTAILOR_TEST_KEY").close()  # built, never asked: nothing is sent
    return [str(w.message) for w in caught if issubclass(w.category, InsecureKeyWarning)]


@pytest.mark.parametrize(
    ("url", "key", "what"),
    [
        ("http://192.0.2.10:8000/v1", "sk-test", "the API key in $LMTAILOR_TEST_KEY"),
        (f"http://user:{SECRET}@llm.example.com/v1", None, "the password in base_url"),
    ],
)
def test_a_key_or_password_bound_for_plain_http_off_this_machine_is_warned_about(
    url: str, key: str | None, what: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    [message] = _warnings_when_built(url, key, monkeypatch)
    assert message.startswith(f"{what} will be sent over plain http to {redact_url(url)}") and "use https" in message
    assert SECRET not in message and "sk-test" not in message


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("http://127.0.0.1:8000/v1", "sk-test"),
        ("http://127.8.9.1:8000/v1", "sk-test"),
        ("http://localhost:8000/v1", "sk-test"),
        ("http://[::1]:8000/v1", "sk-test"),
        ("https://llm.example.com/v1", "sk-test"),
        ("http://192.0.2.10:8000/v1", None),  # no key to leak
    ],
)
def test_no_warning_for_loopback_https_or_no_key(url: str, key: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _warnings_when_built(url, key, monkeypatch) == []
