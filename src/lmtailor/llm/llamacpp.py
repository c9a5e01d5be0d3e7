"""llama.cpp through llama-cpp-python: the embedded default backend, and any GGUF file (with a GGUF LoRA).

Greedy generation (temperature 0, no JSON schema) runs `n_parallel` sequences at once in a context of its own,
one KV stream per sequence: each step decodes one token of every sequence in a single llama_decode, a sequence
leaves at its stop string, end of turn or max_tokens, and the next prompt takes its slot (continuous batching).
A new prompt starts from the longest prefix it shares with what a slot already holds (the schema and
instructions that every prompt of a task repeats), copied from that slot's stream, so only the rest is prefilled.

Answers do not depend on the other prompts in a call, their order or the client's batch size. llama.cpp's CPU
kernels round a row of a matrix product by the shape of the whole product: with 1 to 3 rows a decode step took
the vector path and with 4 or more the tiled one, which moved logits by up to 1.2; a prompt prefilled after a
prefix of 114 cached tokens moved by 0.7, after 112 not at all (rows are tiled in groups of 4, counted from the
start of the batch). So every decode step has exactly `n_parallel` rows, all with logits (a free slot decodes a
placeholder, then drops it); every prompt is prefilled by itself, its logits at its last token only; and a
cached prefix is used in whole blocks of `PREFIX_BLOCK` tokens, so the rest falls into the row groups it would
have had prefilled whole. A prompt's greedy answer is then a function of the prompt and `n_parallel`, which is
in `identity()` (so the response cache keeps widths apart); with `n_parallel` 1 it is the one-prompt-at-a-time
path's answer. The widths compared on one CPU are not proof for another: llama.cpp is built for the machine.

The fixed width has a price: a call of fewer prompts than `n_parallel` pays for them all (on 2 cores a decode
step of 8 rows took 68 ms, of one row 17 ms), so one-prompt-at-a-time work wants `n_parallel` 1.

Sampling (temperature > 0) and JSON-schema grammars go through llama-cpp-python's `create_completion`, one prompt
at a time from an empty KV cache; `loglikelihood` and `loglikelihood_rolling` score one text at a time from an
empty KV cache too, so a score depends on its text alone.
"""

from __future__ import annotations

import ctypes
import json
import os
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lmtailor.llm.backend import Backend, prompt_text
from lmtailor.llm.types import BackendError, Completion, GenParams, LogLik, Prompt

END_OF_TURN = "<end_of_turn>"
# A reused prefix is a multiple of this many tokens (see the module docstring); vLLM's prefix cache also reuses
# whole blocks of 16. A multiple of llama.cpp's row groups (4 here) is what keeps reuse exact.
PREFIX_BLOCK = 16
# Prompts per client call on the greedy path, per slot: a call ends with slots idling while its last
# sequences finish, so longer calls idle less; the client caches and reports progress call by call.
CALL_PER_SLOT = 8


class LlamaCppBackend(Backend):
    kind = "llamacpp"
    supports_schema = True

    def __init__(
        self,
        model_path: Path | str | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        lora_path: Path | str | None = None,
        n_parallel: int = 8,
    ):
        """`n_ctx`: each sequence's window; `n_parallel`: greedy sequences decoded together (each its own
        KV stream of n_ctx cells, 18 KB a cell for Gemma 3 270M)."""
        from llama_cpp import Llama

        from lmtailor.llm.embedded import MODEL_NAME, gguf_path

        path = Path(model_path) if model_path else gguf_path()
        if not path.is_file():
            raise BackendError(f"{path}: no such GGUF file")
        if n_parallel < 1:
            raise ValueError("n_parallel must be at least 1")
        self.path = path
        self.model = MODEL_NAME if model_path is None else path.name
        self.named_file = model_path is not None
        self.lora_path = Path(lora_path) if lora_path else None
        self.n_parallel = n_parallel
        self._llm = Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads or os.cpu_count(),
            lora_path=str(self.lora_path) if self.lora_path else None,
            verbose=False,
        )
        self._parallel: _Parallel | None = None  # made on first greedy call

    def identity(self) -> dict[str, Any]:
        out = {**super().identity(), "file": self.path.name, "size": self.path.stat().st_size}
        if self.named_file:  # two exports of one fine-tune are the same size: the time tells them apart
            out["mtime_ns"] = self.path.stat().st_mtime_ns
        if self.lora_path:
            out["lora"] = [self.lora_path.name, self.lora_path.stat().st_size, self.lora_path.stat().st_mtime_ns]
        if self.n_parallel > 1:  # greedy answers depend on the decode width; 1 is the sequential path's
            out["n_parallel"] = self.n_parallel
        return out

    def batches(self, kind: str, items: Sequence[Any], **options: Any) -> list[list[int]] | None:
        """Greedy calls of CALL_PER_SLOT prompts a slot, in text order, so prompts sharing a prefix meet in
        the slots. Answers do not depend on the plan; only speed does."""
        if kind != "generate" or not _greedy(options["params"]):
            return None
        order = sorted(range(len(items)), key=lambda i: prompt_text(items[i]))
        size = CALL_PER_SLOT * self.n_parallel
        return [order[lo : lo + size] for lo in range(0, len(order), size)]

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]:
        requests = [self._request(p, params) for p in prompts]
        if _greedy(params):
            if self._parallel is None:
                self._parallel = _Parallel(self._llm, self.n_parallel)
            return self._parallel.run(requests)
        from llama_cpp import LlamaGrammar

        schema = params.json_schema
        grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False) if schema else None
        return [self._sample(r, params, grammar) for r in requests]

    def _request(self, prompt: Prompt, params: GenParams) -> _Request:
        text = prompt_text(prompt)
        stop = list(params.stop) if isinstance(prompt, str) else [*params.stop, END_OF_TURN]
        tokens = self._tokenize(text)
        window = self._llm.n_ctx()
        if len(tokens) >= window:
            raise BackendError(f"a prompt of {len(tokens)} tokens leaves no room in the window of {window}")
        return _Request(text, tokens, [s for s in stop if s], min(params.max_tokens, window - len(tokens)))

    def _sample(self, request: _Request, params: GenParams, grammar: Any) -> Completion:
        """One prompt through llama-cpp-python's own sampling (and grammar), from an empty KV cache."""
        self._llm.reset()
        r: Any = self._llm.create_completion(
            request.text,
            max_tokens=request.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            stop=request.stop or None,
            seed=params.seed,
            grammar=grammar,
        )
        choice, usage = r["choices"][0], r["usage"]
        finish = "length" if choice["finish_reason"] == "length" else "stop"
        return Completion(choice["text"], usage["prompt_tokens"], usage["completion_tokens"], finish)

    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LogLik]:
        out = []
        for context, continuation in pairs:
            ctx = self._tokenize(context)
            whole = self._tokenize(context + continuation)
            n = min(_common_prefix(ctx, whole), len(whole) - 1)  # the continuation gets at least one token
            if len(whole) > self._llm.n_ctx():
                raise BackendError(
                    f"context and continuation take {len(whole)} tokens; the window is {self._llm.n_ctx()}"
                )
            out.append(self._score(whole, n))
        return out

    def loglikelihood_rolling(self, texts: Sequence[str], max_tokens: int | None = None) -> list[LogLik]:
        out = []
        for text in texts:
            tokens = self._tokenize(text)[:max_tokens]
            if len(tokens) > self._llm.n_ctx():
                raise BackendError(f"a text of {len(tokens)} tokens is longer than the window of {self._llm.n_ctx()}")
            out.append(self._score(tokens, 1) if len(tokens) > 1 else LogLik(0.0, True, 0))
        return out

    def _tokenize(self, text: str) -> list[int]:
        return self._llm.tokenize(text.encode(), add_bos=True, special=True)

    def _score(self, whole: list[int], n: int) -> LogLik:
        """log P(whole[n:] | whole[:n]), n >= 1, from an empty KV cache."""
        llm = self._llm
        cont = whole[n:]
        llm.reset()
        llm.eval(whole[:n])
        rows = [_last_logits(llm)]
        # The continuation minus its last token, in one batch with logits at every position. llama-cpp-python's
        # high-level eval keeps only the last row unless the model holds an n_ctx x 262k logits_all buffer
        # (2 GB for Gemma), so this reaches its batch directly.
        if len(cont) > 1:
            rows.extend(_decode_all_logits(llm, cont[:-1]))
        logits = np.stack(rows).astype(np.float64)
        logz = np.logaddexp.reduce(logits, axis=1)
        picked = logits[np.arange(len(cont)), cont] - logz
        greedy = bool(np.all(logits.argmax(axis=1) == np.asarray(cont)))
        return LogLik(float(picked.sum()), greedy, len(cont))

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode(), add_bos=False, special=True))

    def close(self) -> None:
        if self._parallel is not None:
            self._parallel.close()
        self._llm.close()


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _last_logits(llm: Any) -> np.ndarray:
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).copy()


def _decode_all_logits(llm: Any, tokens: list[int]) -> list[np.ndarray]:
    rows: list[np.ndarray] = []
    for lo in range(0, len(tokens), llm.n_batch):
        batch = tokens[lo : lo + llm.n_batch]
        llm._ctx.kv_cache_seq_rm(-1, llm.n_tokens, -1)
        llm._batch.set_batch(batch=batch, n_past=llm.n_tokens, logits_all=True)
        llm._ctx.decode(llm._batch)
        block = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(batch) * llm.n_vocab(),))
        rows.extend(block.reshape(len(batch), llm.n_vocab()).copy())
        llm.input_ids[llm.n_tokens : llm.n_tokens + len(batch)] = batch
        llm.n_tokens += len(batch)
    return rows


def _greedy(params: GenParams) -> bool:
    return params.temperature == 0 and params.json_schema is None


@dataclass
class _Request:
    text: str
    tokens: list[int]  # BOS first
    stop: list[str]
    max_tokens: int  # within the window


@dataclass
class _Slot:
    """One sequence id and its KV stream; `cached` are the tokens the stream holds, kept after the sequence
    ends as a prefix for the next prompts."""

    seq: int
    cached: list[int] = field(default_factory=list)
    request: int | None = None  # index of the request it is answering
    out: list[int] = field(default_factory=list)  # tokens generated; the last is not in the stream yet
    text: bytearray = field(default_factory=bytearray)


class _Parallel:
    """Greedy decoding of many prompts at once in one llama.cpp context (see the module docstring)."""

    def __init__(self, llm: Any, n_parallel: int):
        import llama_cpp
        from llama_cpp import _internals

        self._lib = llama_cpp
        self._vocab = llm._model.vocab
        self._n_vocab = llm.n_vocab()
        self._window = llm.n_ctx()
        self._n_batch = llm.n_batch
        self._placeholder = llm.token_bos()
        params = llama_cpp.llama_context_params.from_buffer_copy(llm.context_params)
        params.n_ctx = self._window * n_parallel
        params.n_seq_max = n_parallel
        # A stream per sequence: a token attends only to its own sequence's cells. In one shared stream every
        # token's attention spans every sequence's cells, and a step of 8 took 40 ms instead of 17.
        params.kv_unified = False
        self._ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        if llm._lora_adapter is not None:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(llm._lora_adapter)
            scales = (ctypes.c_float * 1)(llm.lora_scale)
            if llama_cpp.llama_set_adapters_lora(self._ctx.ctx, adapters, 1, scales):
                raise BackendError(f"llama.cpp refused the LoRA adapter {llm.lora_path}")
        self._batch = _internals.LlamaBatch(n_tokens=max(self._n_batch, n_parallel), embd=0, n_seq_max=1)
        self._slots = [_Slot(seq) for seq in range(n_parallel)]
        self._pieces: dict[int, bytes] = {}

    def run(self, requests: Sequence[_Request]) -> list[Completion]:
        out: list[Completion | None] = [None] * len(requests)
        queue = deque(range(len(requests)))
        while True:
            for slot in self._slots:
                while slot.request is None and queue:
                    i = queue.popleft()
                    self._start(slot, i, requests[i])
                    self._advance(slot, self._prefill(slot, requests[i].tokens), requests, out)
            if all(slot.request is None for slot in self._slots):
                break
            self._step(requests, out)
        return [c for c in out if c is not None]

    def _start(self, slot: _Slot, index: int, request: _Request) -> None:
        """Seat a request in a slot, its stream holding the longest whole-block prefix any slot has of it."""
        tokens = request.tokens
        best, n = slot, _shared(slot.cached, tokens)
        for other in self._slots:
            common = _shared(other.cached, tokens)
            if common > n:
                best, n = other, common
        memory = self._ctx.memory
        if best is not slot:  # across streams llama.cpp copies a whole stream; the rest is dropped below
            self._lib.llama_memory_seq_cp(memory, best.seq, slot.seq, -1, -1)
        self._lib.llama_memory_seq_rm(memory, slot.seq, n, -1)
        slot.cached, slot.request, slot.out, slot.text = tokens[:n], index, [], bytearray()

    def _prefill(self, slot: _Slot, tokens: list[int]) -> int:
        """Decode the prompt past its cached prefix, by itself, in chunks that end where a whole prompt's
        would (multiples of n_batch); the greedy next token."""
        b = self._batch.batch
        start = len(slot.cached)
        while start < len(tokens):
            end = min((start // self._n_batch + 1) * self._n_batch, len(tokens))
            for row, pos in enumerate(range(start, end)):
                b.token[row], b.pos[row], b.n_seq_id[row], b.seq_id[row][0] = tokens[pos], pos, 1, slot.seq
                b.logits[row] = pos == len(tokens) - 1
            b.n_tokens = end - start
            self._decode()
            start = end
        slot.cached = list(tokens)
        return int(self._logits(1)[0].argmax())

    def _step(self, requests: Sequence[_Request], out: list[Completion | None]) -> None:
        """One token for every sequence; a free slot decodes a placeholder so the step keeps its width."""
        b = self._batch.batch
        for row, slot in enumerate(self._slots):
            token = slot.out[-1] if slot.request is not None else self._placeholder
            b.token[row], b.pos[row], b.n_seq_id[row], b.seq_id[row][0] = token, len(slot.cached), 1, slot.seq
            b.logits[row] = True
        b.n_tokens = len(self._slots)
        self._decode()
        picks = self._logits(len(self._slots)).argmax(axis=1)
        for slot, token in zip(self._slots, picks.tolist(), strict=True):
            if slot.request is None:
                self._lib.llama_memory_seq_rm(self._ctx.memory, slot.seq, len(slot.cached), -1)
            else:
                slot.cached.append(slot.out[-1])
                self._advance(slot, token, requests, out)

    def _advance(self, slot: _Slot, token: int, requests: Sequence[_Request], out: list[Completion | None]) -> None:
        """Take the sequence's next token, or end it as llama-cpp-python does: an end-of-generation token ends
        it uncounted, a stop string cuts the text where it starts (the token that completed it is counted), and
        max_tokens ends it with finish_reason length."""
        assert slot.request is not None
        request = requests[slot.request]
        finish, cut = None, None
        if self._lib.llama_vocab_is_eog(self._vocab, token):
            finish = "stop"
        else:
            slot.out.append(token)
            seen = len(slot.text)
            slot.text += self._piece(token)
            stops = [s.encode() for s in request.stop]
            found = [i for s in stops if (i := slot.text.find(s, max(0, seen - len(s) + 1))) >= 0]
            if found:
                finish, cut = "stop", min(found)
            elif len(slot.out) >= request.max_tokens:
                finish = "length"
        if finish is None:
            return
        text = bytes(slot.text[:cut]).decode("utf-8", errors="ignore")
        out[slot.request] = Completion(text, len(request.tokens), len(slot.out), finish)
        slot.request = None

    def _decode(self) -> None:
        code = self._lib.llama_decode(self._ctx.ctx, self._batch.batch)
        if code != 0:
            raise BackendError(f"llama_decode returned {code}")

    def _logits(self, rows: int) -> np.ndarray:
        return np.ctypeslib.as_array(self._lib.llama_get_logits(self._ctx.ctx), shape=(rows, self._n_vocab))

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            buf = ctypes.create_string_buffer(64)
            n = self._lib.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
            piece = self._pieces[token] = buf.raw[:n]
        return piece

    def close(self) -> None:
        self._batch.close()
        self._ctx.close()


def _shared(cached: list[int], tokens: list[int]) -> int:
    """How much of `tokens` a stream holding `cached` can keep: their common prefix in whole PREFIX_BLOCKs,
    short of the prompt's last token, whose logits the prefill must compute."""
    return min(_common_prefix(cached, tokens), len(tokens) - 1) // PREFIX_BLOCK * PREFIX_BLOCK
