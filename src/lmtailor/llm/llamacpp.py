"""llama.cpp through llama-cpp-python: the embedded default backend, and any GGUF file.

llama-cpp-python decodes one sequence at a time, so a batch is a loop. Every prompt is evaluated from an
empty KV cache: reusing a shared prefix is faster, but llama.cpp's logits then depend on what ran before
(differences up to ~0.9 in a logit were seen), so a resumed run would not reproduce an uninterrupted one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lmtailor.llm.backend import Backend, gemma_chat
from lmtailor.llm.types import BackendError, Completion, GenParams, LogLik, Prompt

END_OF_TURN = "<end_of_turn>"


class LlamaCppBackend(Backend):
    kind = "llamacpp"
    supports_schema = True

    def __init__(
        self,
        model_path: Path | str | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        lora_path: Path | str | None = None,
    ):
        from llama_cpp import Llama

        from lmtailor.llm.embedded import MODEL_NAME, gguf_path

        path = Path(model_path) if model_path else gguf_path()
        if not path.is_file():
            raise BackendError(f"{path}: no such GGUF file")
        self.path = path
        self.model = MODEL_NAME if model_path is None else path.name
        self.lora_path = Path(lora_path) if lora_path else None
        self._llm = Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads or os.cpu_count(),
            lora_path=str(self.lora_path) if self.lora_path else None,
            verbose=False,
        )

    def identity(self) -> dict[str, Any]:
        out = {**super().identity(), "file": self.path.name, "size": self.path.stat().st_size}
        if self.lora_path:
            out["lora"] = [self.lora_path.name, self.lora_path.stat().st_size, self.lora_path.stat().st_mtime_ns]
        return out

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]:
        from llama_cpp import LlamaGrammar

        grammar = (
            LlamaGrammar.from_json_schema(json.dumps(params.json_schema), verbose=False) if params.json_schema else None
        )
        out = []
        for prompt in prompts:
            chat = not isinstance(prompt, str)
            text = gemma_chat(prompt) if chat else prompt  # type: ignore[arg-type]
            stop = [*params.stop, END_OF_TURN] if chat else list(params.stop)
            self._llm.reset()
            r: Any = self._llm.create_completion(
                text,
                max_tokens=params.max_tokens,
                temperature=params.temperature,
                top_p=params.top_p,
                stop=stop or None,
                seed=params.seed,
                grammar=grammar,
            )
            choice, usage = r["choices"][0], r["usage"]
            out.append(
                Completion(
                    choice["text"],
                    usage["prompt_tokens"],
                    usage["completion_tokens"],
                    "length" if choice["finish_reason"] == "length" else "stop",
                )
            )
        return out

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
