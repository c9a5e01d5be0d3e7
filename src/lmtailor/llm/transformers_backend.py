"""transformers for a Hugging Face model folder (with no folder, the embedded Gemma 3 270M converted once from
its GGUF, see convert.py), or for a model already in memory: the PEFT model a training run evaluates.

Unlike llama.cpp it runs a whole batch through the model at once, and it plans the client's batches itself:
items sorted by token length, so little of each batch is padding. It follows llama.cpp's conventions so both
backends agree: BOS on every prompt, generation ends at the model's end-of-generation ids, stop strings are
looked for in the completion only and cut it at the first one, and completion_tokens counts what was
generated up to there.

Generation pads on the left, so every row continues from the same position. Scoring pads on the right, where
causal attention never looks back at padding, and applies the output layer only where a token is scored:
Gemma's vocabulary has 262k entries. Sequences with the same input (the four answer letters after one MMLU
question) share one pass.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from jinja2 import TemplateError
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList

from lmtailor.llm.backend import Backend
from lmtailor.llm.types import BackendError, Completion, GenParams, LogLik, Prompt

# Files whose content decides the answers; the weights are fingerprinted by name, size and mtime, not read.
_SMALL_FILES = ("config.json", "generation_config.json", "tokenizer_config.json", "chat_template.jinja")
_CHUNK = 512  # scored positions per output-layer call: 512 x 262k float32 logits is 0.5 GB

# A scoring request: a token sequence and how many of its last tokens are scored (given all before them).
Scored = tuple[list[int], int]


class TransformersBackend(Backend):
    kind = "transformers"
    supports_schema = False  # the client re-asks until the JSON fits instead

    def __init__(
        self,
        model_dir: Path | str | None = None,
        batch_size: int = 8,
        n_threads: int | None = None,
        score_batch_size: int = 8,
        adapter: Path | str | None = None,
    ):
        """`batch_size`: prompts generated together; `score_batch_size`: sequences scored in one pass (a
        generation step gives each row one position, so wider batches keep the cores busy; scoring already
        gives them every position of every row). `adapter`: a PEFT adapter folder, merged into the model once
        so that it answers at the base model's speed."""
        from lmtailor.llm.embedded import MODEL_NAME

        if model_dir is None:
            from lmtailor.llm.convert import embedded_hf_dir

            path = embedded_hf_dir()
        else:
            path = Path(model_dir)
        if not (path / "config.json").is_file():
            raise BackendError(f"{path}: not a Hugging Face model folder (it has no config.json)")
        torch.set_num_threads(n_threads or os.cpu_count() or 1)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        name = MODEL_NAME if model_dir is None else path.name
        self._fingerprint = _fingerprint(path)
        if adapter is not None:
            model, name = self._merged(model, Path(adapter), name)
        self._setup(model, AutoTokenizer.from_pretrained(path), name, batch_size, score_batch_size)
        self.path: Path | None = path

    def _merged(self, model: Any, adapter: Path, name: str) -> tuple[Any, str]:
        from peft import PeftModel

        if not (adapter / "adapter_config.json").is_file():
            raise BackendError(f"{adapter}: not a PEFT adapter folder (it has no adapter_config.json)")
        self._fingerprint += f"+{_fingerprint(adapter)}"
        return PeftModel.from_pretrained(model, adapter).merge_and_unload().eval(), f"{name}+{adapter.name}"

    @classmethod
    def wrap(
        cls, model: Any, tokenizer: Any, name: str, batch_size: int = 8, score_batch_size: int = 8
    ) -> TransformersBackend:
        """A model already in memory, as it is now: a PEFT model during training. Its answers are never cached,
        since its weights change; a model in training mode goes back to it after every call."""
        backend = cls.__new__(cls)
        backend._setup(model, tokenizer, name, batch_size, score_batch_size)
        backend.path = None
        backend.cacheable = False
        return backend

    def _setup(self, model: Any, tokenizer: Any, name: str, batch_size: int, score_batch_size: int) -> None:
        self._lm = model
        self.tokenizer = tokenizer
        self.model = name
        self.batch_size = batch_size
        self.score_batch_size = score_batch_size
        self._eos = _end_ids(model, tokenizer)
        self._pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self._eos)
        self._window = model.config.max_position_embeddings

    def identity(self) -> dict[str, Any]:
        if self.path is None:
            return {**super().identity(), "in_memory": True}
        return {**super().identity(), "folder": self.path.name, "fingerprint": self._fingerprint}

    def batches(self, kind: str, items: Sequence[Any], **options: Any) -> list[list[int]]:
        if kind == "generate":
            return _batches([self._encode_prompt(p) for p in items], self.batch_size)
        if kind == "loglikelihood":
            return self._plan([self._split(context, continuation) for context, continuation in items])
        return self._plan([self._whole(text, options.get("max_tokens")) for text in items])

    # -- generation ---------------------------------------------------------------------------------------

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]:
        encoded = [self._encode_prompt(p) for p in prompts]
        for ids in encoded:
            if len(ids) + params.max_tokens > self._window:
                raise BackendError(
                    f"a prompt of {len(ids)} tokens plus max_tokens {params.max_tokens} exceeds the"
                    f" model's window of {self._window}"
                )
        out: list[Completion | None] = [None] * len(prompts)
        with self._evaluating():
            for batch in _batches(encoded, self.batch_size):
                completions = self._generate_batch([encoded[i] for i in batch], params)
                for i, completion in zip(batch, completions, strict=True):
                    out[i] = completion
        return [c for c in out if c is not None]

    def _encode_prompt(self, prompt: Prompt) -> list[int]:
        """Token ids with BOS. A chat template writes BOS itself; plain text and gemma_chat get it added."""
        if isinstance(prompt, str) or not self.tokenizer.chat_template:
            return self.tokenizer(super().render(prompt)).input_ids
        return self.tokenizer(self._templated(prompt), add_special_tokens=False).input_ids

    def render(self, prompt: Prompt) -> str:
        """A chat prompt through the tokenizer's chat template where it has one, less its BOS."""
        if isinstance(prompt, str) or not self.tokenizer.chat_template:
            return super().render(prompt)
        text, bos = self._templated(prompt), self.tokenizer.bos_token
        return text.removeprefix(bos) if bos else text

    def _templated(self, prompt: list[dict[str, Any]]) -> str:
        try:
            return self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        except TemplateError as e:
            raise BackendError(f"{self.model}: its chat template refuses these messages: {e}") from e

    def _generate_batch(self, encoded: list[list[int]], params: GenParams) -> list[Completion]:
        input_ids, mask = _padded(encoded, self._pad, left=True)
        width = input_ids.shape[1]
        stop = _StopStrings(self.tokenizer, params.stop, width) if params.stop else None
        sampling = params.temperature > 0
        options: dict[str, Any] = {"do_sample": sampling, "top_k": None}
        if sampling:
            options |= {"temperature": params.temperature, "top_p": params.top_p}
        else:
            options |= {"temperature": None, "top_p": None}
        # Only sampling draws: greedy decoding leaves the random state (a training run's) as it was.
        with torch.random.fork_rng(devices=[], enabled=sampling):
            if sampling:
                torch.manual_seed(params.seed)
            output = self._lm.generate(
                input_ids=input_ids.to(self._lm.device),
                attention_mask=mask.to(self._lm.device),
                max_new_tokens=params.max_tokens,
                eos_token_id=sorted(self._eos),
                pad_token_id=self._pad,
                stopping_criteria=StoppingCriteriaList([stop]) if stop else None,
                **options,
            )
        return [self._completion(len(ids), output[row, width:].tolist(), params) for row, ids in enumerate(encoded)]

    def _completion(self, prompt_tokens: int, generated: list[int], params: GenParams) -> Completion:
        """Cut at the end-of-generation token (not counted, as in llama.cpp), then at the first stop string."""
        ended = next((k for k, t in enumerate(generated) if t in self._eos), None)
        tokens = generated if ended is None else generated[:ended]
        text = self._decode(tokens)
        found = min(((text.find(s), s) for s in params.stop if s in text), default=None)
        if found is not None:
            cut, stop = found
            # Tokens generated until the stop string was complete: the point where generation ended.
            used = next(k for k in range(1, len(tokens) + 1) if len(self._decode(tokens[:k])) >= cut + len(stop))
            return Completion(text[:cut], prompt_tokens, used, "stop")
        finish = "length" if ended is None and len(tokens) >= params.max_tokens else "stop"
        return Completion(text, prompt_tokens, len(tokens), finish)

    def _decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True)

    # -- scoring ------------------------------------------------------------------------------------------

    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LogLik]:
        return self._score([self._split(context, continuation) for context, continuation in pairs])

    def loglikelihood_rolling(self, texts: Sequence[str], max_tokens: int | None = None) -> list[LogLik]:
        return self._score([self._whole(text, max_tokens) for text in texts])

    def _split(self, context: str, continuation: str) -> Scored:
        """Tokens of context + continuation together, and how many of them belong to the continuation.

        Tokenised together because the boundary may fall inside a token; the split is where the context's
        own tokens stop matching, as in llamacpp.py, and the continuation always keeps at least one token."""
        ctx = self.tokenizer(context).input_ids
        whole = self.tokenizer(context + continuation).input_ids
        if len(whole) > self._window:
            raise BackendError(f"context and continuation take {len(whole)} tokens; the window is {self._window}")
        n = 0
        for a, b in zip(ctx, whole, strict=False):
            if a != b:
                break
            n += 1
        n = min(n, len(whole) - 1)
        return whole, len(whole) - n

    def _whole(self, text: str, max_tokens: int | None) -> Scored:
        tokens = self.tokenizer(text).input_ids[:max_tokens]
        if len(tokens) > self._window:
            raise BackendError(f"a text of {len(tokens)} tokens is longer than the window of {self._window}")
        return tokens, max(len(tokens) - 1, 0)

    def _plan(self, requests: list[Scored]) -> list[list[int]]:
        """Request indices in batches of up to score_batch_size distinct inputs (a sequence minus its last
        token), shortest first; requests sharing an input go together. Those with nothing to score come first."""
        inputs: dict[tuple[int, ...], list[int]] = {}
        empty = []
        for i, (tokens, n) in enumerate(requests):
            if n:
                inputs.setdefault(tuple(tokens[:-1]), []).append(i)
            else:
                empty.append(i)
        groups = sorted(inputs.items(), key=lambda item: len(item[0]))
        size = self.score_batch_size
        batches = [[i for _, members in groups[lo : lo + size] for i in members] for lo in range(0, len(groups), size)]
        return [empty, *batches] if empty else batches

    def _score(self, requests: list[Scored]) -> list[LogLik]:
        out: list[LogLik | None] = [None] * len(requests)
        with self._evaluating():
            for batch in self._plan(requests):
                for i, loglik in zip(batch, self._score_batch([requests[i] for i in batch]), strict=True):
                    out[i] = loglik
        return [x for x in out if x is not None]

    def _score_batch(self, requests: list[Scored]) -> list[LogLik]:
        rows: dict[tuple[int, ...], int] = {}
        for tokens, n in requests:
            if n:
                rows.setdefault(tuple(tokens[:-1]), len(rows))
        if not rows:
            return [LogLik(0.0, True, 0) for _ in requests]
        # Each scored position once, row by row, however many requests score a token there.
        positions: dict[tuple[int, int], int] = {}
        spans, where, targets = [], [], []
        for tokens, n in requests:
            row = rows.get(tuple(tokens[:-1]), -1)
            spans.append((len(targets), len(targets) + n))
            for p in range(len(tokens) - 1 - n, len(tokens) - 1):
                where.append(positions.setdefault((row, p), len(positions)))
                targets.append(tokens[p + 1])
        device = self._lm.device
        input_ids, mask = _padded([list(key) for key in rows], self._pad, left=False)
        hidden = self._lm.get_decoder()(input_ids=input_ids.to(device), attention_mask=mask.to(device))
        cells = torch.tensor(list(positions), device=device)
        states = hidden.last_hidden_state[cells[:, 0], cells[:, 1]]
        at, wanted = torch.tensor(where, device=device), torch.tensor(targets, device=device)
        picked = torch.empty(len(targets), dtype=torch.float64, device=device)
        greedy = torch.empty(len(targets), dtype=torch.bool, device=device)
        for lo in range(0, len(states), _CHUNK):
            logits = self._logits(states[lo : lo + _CHUNK])
            here = (at >= lo) & (at < lo + _CHUNK)
            rel, token = at[here] - lo, wanted[here]
            # log-softmax in float64 from float32 logits: the order of two logits at one position is kept
            picked[here] = logits[rel, token].double() - torch.logsumexp(logits, dim=-1)[rel].double()
            greedy[here] = logits.argmax(dim=-1)[rel] == token
        picked_, greedy_ = picked.cpu(), greedy.cpu()
        return [
            LogLik(float(picked_[a:b].sum()), bool(greedy_[a:b].all()), b - a) if b > a else LogLik(0.0, True, 0)
            for a, b in spans
        ]

    def _logits(self, states: torch.Tensor) -> torch.Tensor:
        """The output layer as the model's forward applies it (with Gemma 2's final logit soft-capping)."""
        out = self._lm.get_output_embeddings()(states).float()
        cap = getattr(self._lm.config, "final_logit_softcapping", None)
        return torch.tanh(out / cap) * cap if cap else out

    # -- shared -------------------------------------------------------------------------------------------

    @contextmanager
    def _evaluating(self) -> Iterator[None]:
        """Eval mode (no dropout) and no autograd; a model in training mode goes back to it afterwards."""
        training = self._lm.training
        self._lm.eval()
        try:
            with torch.inference_mode():
                yield
        finally:
            self._lm.train(training)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False).input_ids)

    def close(self) -> None:
        del self._lm


class _StopStrings(StoppingCriteria):
    """Ends a row once its completion (not prompt + completion) contains a stop string, as llama.cpp does."""

    def __init__(self, tokenizer: Any, stop: Sequence[str], prompt_width: int):
        self.tokenizer, self.stop, self.width = tokenizer, tuple(stop), prompt_width

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.width :], skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stop) for t in texts], dtype=torch.bool, device=input_ids.device)


def _end_ids(model: Any, tokenizer: Any) -> set[int]:
    """Ids that end an answer: the generation config's end ids and the tokenizer's end-of-sequence."""
    configured = model.generation_config.eos_token_id
    ids = {configured} if isinstance(configured, int) else set(configured or [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    if not ids:
        raise BackendError("the model and tokenizer name no end-of-sequence token: generation could not stop")
    return ids


def _padded(sequences: list[list[int]], pad: int, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids and attention mask of sequences padded to the longest, on the left or on the right."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, s in enumerate(sequences):
        cols = slice(width - len(s), width) if left else slice(0, len(s))
        ids[row, cols] = torch.tensor(s, dtype=torch.long)
        mask[row, cols] = 1
    return ids, mask


def _batches(sequences: list[list[int]], size: int) -> list[list[int]]:
    """Indices in batches of similar length, so little of each batch is padding."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    return [order[lo : lo + size] for lo in range(0, len(order), size)]


def _fingerprint(path: Path) -> str:
    h = hashlib.sha256()
    for name in _SMALL_FILES:
        f = path / name
        if f.is_file():
            h.update(name.encode() + f.read_bytes())
    for f in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")) + [path / "tokenizer.json"]:
        if f.is_file():
            st = f.stat()
            h.update(json.dumps([f.name, st.st_size, st.st_mtime_ns]).encode())
    return h.hexdigest()[:16]
