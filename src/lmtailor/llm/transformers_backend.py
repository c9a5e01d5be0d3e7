"""transformers on the CPU for a Hugging Face model folder; with no folder, the embedded Gemma 3 270M
converted once from its GGUF (see convert.py).

Unlike llama.cpp it runs a whole batch through the model at once: generation with left padding, and
log-likelihoods in one forward pass per batch. It follows llama.cpp's conventions so both backends agree:
BOS on every prompt, generation ends at the model's end-of-generation ids, stop strings are looked for in
the completion only and cut it at the first one, and completion_tokens counts what was generated up to there.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from jinja2 import TemplateError
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList

from lmtailor.llm.backend import Backend, gemma_chat
from lmtailor.llm.types import BackendError, Completion, GenParams, LogLik, Prompt

# Files whose content decides the answers; the weights are fingerprinted by name, size and mtime, not read.
_SMALL_FILES = ("config.json", "generation_config.json", "tokenizer_config.json", "chat_template.jinja")


class TransformersBackend(Backend):
    kind = "transformers"
    supports_schema = False  # the client re-asks until the JSON fits instead

    def __init__(self, model_dir: Path | str | None = None, batch_size: int = 8, n_threads: int | None = None):
        from lmtailor.llm.embedded import MODEL_NAME

        if model_dir is None:
            from lmtailor.llm.convert import embedded_hf_dir

            path = embedded_hf_dir()
        else:
            path = Path(model_dir)
        if not (path / "config.json").is_file():
            raise BackendError(f"{path}: not a Hugging Face model folder (it has no config.json)")
        self.path = path
        self.model = MODEL_NAME if model_dir is None else path.name
        self.batch_size = batch_size
        torch.set_num_threads(n_threads or os.cpu_count() or 1)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self._lm = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        eos = self._lm.generation_config.eos_token_id
        self._eos = {eos} if isinstance(eos, int) else set(eos or [self.tokenizer.eos_token_id])
        self._pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(self._eos)
        self._window = self._lm.config.max_position_embeddings
        self._fingerprint = _fingerprint(path)

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "folder": self.path.name, "fingerprint": self._fingerprint}

    # -- generation ---------------------------------------------------------------------------------------

    @torch.inference_mode()
    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]:
        encoded = [self._encode_prompt(p) for p in prompts]
        for ids in encoded:
            if len(ids) + params.max_tokens > self._window:
                raise BackendError(
                    f"a prompt of {len(ids)} tokens plus max_tokens {params.max_tokens} exceeds the"
                    f" model's window of {self._window}"
                )
        out: list[Completion | None] = [None] * len(prompts)
        for batch in _batches(encoded, self.batch_size):
            for i, completion in zip(batch, self._generate_batch([encoded[i] for i in batch], params), strict=True):
                out[i] = completion
        return [c for c in out if c is not None]

    def _encode_prompt(self, prompt: Prompt) -> list[int]:
        """Token ids with BOS. A chat template writes BOS itself; plain text and gemma_chat get it added."""
        if isinstance(prompt, str):
            return self.tokenizer(prompt).input_ids
        if self.tokenizer.chat_template:
            try:
                text = self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
            except TemplateError as e:
                raise BackendError(f"{self.path.name}: its chat template refuses these messages: {e}") from e
            return self.tokenizer(text, add_special_tokens=False).input_ids
        return self.tokenizer(gemma_chat(prompt)).input_ids

    def _generate_batch(self, encoded: list[list[int]], params: GenParams) -> list[Completion]:
        input_ids, mask = self._pad_left(encoded)
        width = input_ids.shape[1]
        stop = _StopStrings(self.tokenizer, params.stop, width) if params.stop else None
        sampling = params.temperature > 0
        options: dict[str, Any] = {"do_sample": sampling, "top_k": None}
        if sampling:
            options |= {"temperature": params.temperature, "top_p": params.top_p}
        else:
            options |= {"temperature": None, "top_p": None}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(params.seed)
            output = self._lm.generate(
                input_ids=input_ids,
                attention_mask=mask,
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

    # -- log-likelihood -----------------------------------------------------------------------------------

    @torch.inference_mode()
    def loglikelihood(self, pairs: Sequence[tuple[str, str]]) -> list[LogLik]:
        split = [self._split(context, continuation) for context, continuation in pairs]
        out: list[LogLik | None] = [None] * len(pairs)
        for batch in _batches([whole for whole, _ in split], self.batch_size):
            for i, loglik in zip(batch, self._loglik_batch([split[i] for i in batch]), strict=True):
                out[i] = loglik
        return [x for x in out if x is not None]

    def _split(self, context: str, continuation: str) -> tuple[list[int], int]:
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

    def _loglik_batch(self, items: list[tuple[list[int], int]]) -> list[LogLik]:
        # The model sees each sequence minus its last token; with left padding every continuation ends at the
        # last position, so only the last `keep` rows of logits are computed (the vocabulary is 262k wide).
        input_ids, mask = self._pad_left([whole[:-1] for whole, _ in items])
        keep = max(n for _, n in items)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = self._lm(input_ids=input_ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        out = []
        for row, (whole, n) in enumerate(items):
            target = torch.tensor(whole[-n:])
            rows = logprobs[row, keep - n :]
            picked = rows.gather(1, target[:, None]).squeeze(1)
            greedy = bool((rows.argmax(-1) == target).all())
            out.append(LogLik(float(picked.double().sum()), greedy, n))
        return out

    # -- shared -------------------------------------------------------------------------------------------

    def _pad_left(self, sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), self._pad, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, s in enumerate(sequences):
            ids[row, width - len(s) :] = torch.tensor(s)
            mask[row, width - len(s) :] = 1
        return ids, mask

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
        return torch.tensor([any(s in t for s in self.stop) for t in texts], dtype=torch.bool)


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
