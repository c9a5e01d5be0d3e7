"""llama.cpp's greedy fast path: several sequences decoded together, prompts joining as slots free, a shared
prefix reused from another slot's KV stream.

Mechanics only, never what the model writes: each answer is compared with the same prompt's answer in another
batch (alone, reversed, among other prompts, one slot), or with llama-cpp-python's own one-prompt path.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gguf
import numpy as np
import pytest

from lmtailor.llm.llamacpp import PREFIX_BLOCK, LlamaCppBackend
from lmtailor.llm.types import Completion, GenParams

pytestmark = pytest.mark.model  # loads a model to generate, score or train: not in the fast tier

# Prompts sharing a prefix longer than PREFIX_BLOCK tokens, so slots reuse one another's streams.
SHARED = (
    "Here is a list of farm animals and the sounds they make, one a line, in the same form, as a children's book "
    "would print them under each picture.\nAnimal: "
)
PROMPTS = [SHARED + a for a in ("dog. Sound:", "cat. Sound:", "cow. Sound:", "duck. Sound:", "sheep. Sound:")]
CHAT = [{"role": "user", "content": "Name three colours."}]
MIXED = [*PROMPTS[:3], CHAT, "One, two, three, four,"]
PARAMS = GenParams(max_tokens=8)


@pytest.fixture(scope="module")
def backend() -> Iterator[LlamaCppBackend]:
    b = LlamaCppBackend(n_ctx=256, n_parallel=3)  # fewer slots than prompts: sequences leave and join
    yield b
    b.close()


@pytest.fixture(scope="module")
def answers(backend: LlamaCppBackend) -> list[Completion]:
    return backend.generate(MIXED, PARAMS)


def _json(completions: list[Completion]) -> list[dict[str, object]]:
    return [c.to_json() for c in completions]


def _sequential(backend: LlamaCppBackend, prompt: str, params: GenParams) -> dict[str, object]:
    """llama-cpp-python's own greedy path: one prompt from an empty KV cache, one token a step."""
    backend._llm.reset()
    r = backend._llm.create_completion(prompt, max_tokens=params.max_tokens, temperature=0.0, stop=list(params.stop))
    choice, usage = r["choices"][0], r["usage"]  # type: ignore[index]
    finish = "length" if choice["finish_reason"] == "length" else "stop"
    return Completion(choice["text"], usage["prompt_tokens"], usage["completion_tokens"], finish).to_json()


def test_the_prompts_share_a_prefix_the_slots_can_reuse(backend: LlamaCppBackend) -> None:
    tokens = [backend._tokenize(p) for p in PROMPTS]
    common = min(next(i for i, (a, b) in enumerate(zip(tokens[0], t, strict=False)) if a != b) for t in tokens[1:])
    assert common >= 2 * PREFIX_BLOCK


def test_one_completion_per_prompt_in_order_whatever_else_is_in_the_batch(
    backend: LlamaCppBackend, answers: list[Completion]
) -> None:
    assert len(answers) == len(MIXED)
    alone = [backend.generate([p], PARAMS)[0] for p in MIXED[-2:]]  # the chat prompt and one without the prefix
    assert _json(answers[-2:]) == _json(alone)
    assert _json(backend.generate(MIXED[::-1], PARAMS)[::-1]) == _json(answers)


def test_answers_do_not_depend_on_the_decode_width_s_companions(backend: LlamaCppBackend) -> None:
    """Five prompts through three slots, each later prompt copying a prefix from another slot, against the
    same prompts in other calls and orders."""
    together = backend.generate(PROMPTS, PARAMS)
    assert _json(backend.generate(PROMPTS[::-1], PARAMS)[::-1]) == _json(together)
    assert _json(backend.generate(PROMPTS[1::2], PARAMS)) == _json(together[1::2])


def test_one_slot_answers_as_llama_cpp_python_s_one_prompt_path() -> None:
    """With one slot every decode step is one row, as llama-cpp-python decodes, and a reused prefix in whole
    blocks leaves the rest of the prompt's logits as a whole prefill's: the same answers exactly."""
    backend = LlamaCppBackend(n_ctx=256, n_parallel=1)
    try:
        fast = backend.generate(PROMPTS[:3], PARAMS)
        assert _json(fast) == [_sequential(backend, p, PARAMS) for p in PROMPTS[:3]]
        assert "n_parallel" not in backend.identity()
    finally:
        backend.close()


def test_token_counts_and_finish_reasons(backend: LlamaCppBackend, answers: list[Completion]) -> None:
    for prompt, c in zip(MIXED, answers, strict=True):
        if isinstance(prompt, str):
            assert c.prompt_tokens == backend.count_tokens(prompt) + 1  # BOS
        else:
            assert c.prompt_tokens > backend.count_tokens(prompt[0]["content"]) + 1  # the turn markers count
        if c.finish_reason == "length":
            assert c.completion_tokens == PARAMS.max_tokens
        else:
            assert c.finish_reason == "stop" and 0 <= c.completion_tokens < PARAMS.max_tokens


def test_max_tokens_cuts_each_answer_to_a_prefix_with_finish_reason_length(
    backend: LlamaCppBackend, answers: list[Completion]
) -> None:
    short = backend.generate(MIXED, GenParams(max_tokens=2))
    for s, long in zip(short, answers, strict=True):
        assert long.text.startswith(s.text)
        if long.completion_tokens > 2:
            assert (s.finish_reason, s.completion_tokens) == ("length", 2)
        else:
            assert s.to_json() == long.to_json()


def test_a_stop_string_cuts_where_it_first_appears(backend: LlamaCppBackend, answers: list[Completion]) -> None:
    # A piece of each greedy answer, whatever it is (its middle character); a stop never written changes nothing.
    for prompt, long in zip(MIXED, answers, strict=True):
        stop = long.text[len(long.text) // 2] if long.text.strip() else "never-written"
        [cut] = backend.generate([prompt], PARAMS.model_copy(update={"stop": ("never-written", stop)}))
        if stop in long.text:
            assert cut.text == long.text[: long.text.index(stop)] and cut.finish_reason == "stop"
            assert cut.completion_tokens <= long.completion_tokens
        else:
            assert cut.to_json() == long.to_json()


def test_the_client_plans_greedy_calls_and_leaves_sampling_to_its_own_chunks(backend: LlamaCppBackend) -> None:
    plan = backend.batches("generate", MIXED, params=PARAMS)
    assert plan is not None and sorted(i for chunk in plan for i in chunk) == list(range(len(MIXED)))
    assert backend.batches("generate", MIXED, params=PARAMS.model_copy(update={"temperature": 0.7})) is None
    assert backend.identity()["n_parallel"] == 3  # greedy answers depend on the width: the cache keeps them apart


@pytest.fixture(scope="module")
def lora(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random rank-4 GGUF LoRA on every block's query and down projections: large enough to change answers."""
    path = tmp_path_factory.mktemp("lora") / "random.gguf"
    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(path, "gemma3")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, 4.0)
    for block in range(18):
        for name, (n_in, n_out) in {"attn_q": (640, 1024), "ffn_down": (2048, 640)}.items():
            stem = f"blk.{block}.{name}.weight"
            writer.add_tensor(f"{stem}.lora_a", rng.normal(0, 0.05, (4, n_in)).astype(np.float32))
            writer.add_tensor(f"{stem}.lora_b", rng.normal(0, 0.05, (n_out, 4)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_gguf_lora_applies_on_the_fast_path(lora: Path, answers: list[Completion]) -> None:
    """The fast path's context of its own carries the adapter: one slot answers as llama-cpp-python's path with
    the adapter, and not as the base model."""
    backend = LlamaCppBackend(n_ctx=256, n_parallel=1, lora_path=lora)
    try:
        tuned = backend.generate(PROMPTS[:2], PARAMS)
        assert _json(tuned) == [_sequential(backend, p, PARAMS) for p in PROMPTS[:2]]
        assert [c.text for c in tuned] != [c.text for c in answers[:2]]
    finally:
        backend.close()
