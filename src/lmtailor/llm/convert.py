"""The embedded Gemma 3 270M GGUF as a Hugging Face model folder (safetensors, config, tokenizer).

transformers reads a GGUF only by dequantising it, which takes about a minute, and training needs a plain
folder anyway, so the conversion runs once into the lmtailor cache and every later load takes seconds.
The folder is built in a temporary directory and renamed into place, under a file lock: a second process
waits for the first instead of converting again, and nobody ever sees half a folder.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import FileLock

from lmtailor.core.progress import make_progress
from lmtailor.llm.embedded import gguf_path, models_dir
from lmtailor.llm.types import BackendError

# Gemma 3's own chat template (google/gemma-3-*-it, tokenizer_config.json); the GGUF carries none.
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}\n"
    "    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}\n"
    "    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    '    {%- set first_user_prefix = "" -%}\n'
    "    {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    '        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}\n'
    "    {%- endif -%}\n"
    "    {%- if (message['role'] == 'assistant') -%}\n"
    '        {%- set role = "model" -%}\n'
    "    {%- else -%}\n"
    "        {%- set role = message['role'] -%}\n"
    "    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n"
    "        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n"
    "        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n"
    "                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n"
    "                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n"
    "        {%- endfor -%}\n"
    "    {%- else -%}\n"
    '        {{ raise_exception("Invalid content type") }}\n'
    "    {%- endif -%}\n"
    "    {{ '<end_of_turn>\\n' }}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{'<start_of_turn>model\\n'}}\n"
    "{%- endif -%}\n"
)
# Texts whose token ids must equal llama.cpp's: turn markers, runs of spaces and newlines, digits, code, accents.
PROBES = (
    "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
    "Hello, world!  Two  spaces,\n\nblank line,\ttab.",
    " leading space and trailing one ",
    "def f(x):\n    return x ** 2  # 12345 67.89",
    "Café naïve résumé — 東京 🙂",
)


def embedded_hf_dir() -> Path:
    """The converted folder of the embedded model, converting it on first use (about a minute)."""
    gguf = gguf_path()
    return build_once(models_dir() / f"{gguf.stem}-hf", lambda out: convert_gemma_gguf(gguf, out))


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """`target`, made by `build(folder)` unless it exists. The folder is a temporary one beside `target`,
    renamed into place when `build` returns, and the whole runs under a file lock: a second process waits
    for the first and then finds the folder, a failed build leaves nothing behind."""
    if target.is_dir():  # only a finished folder is ever renamed into place
        return target
    with FileLock(f"{target}.lock"):
        if target.is_dir():
            return target
        tmp = Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp", dir=target.parent))
        try:
            build(tmp)
            tmp.chmod(0o755)  # mkdtemp's 0700 is for the half-built folder only
            tmp.rename(target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def convert_gemma_gguf(gguf: Path, out: Path) -> None:
    """Write a Gemma 3 GGUF as a float32 safetensors folder whose tokenizer gives llama.cpp's token ids."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GemmaTokenizer

    steps = ("reading the GGUF config", "building the tokenizer", "dequantising the weights", "saving safetensors")
    with make_progress() as progress:
        task = progress.add_task(f"convert {gguf.name}", total=len(steps))

        def step(i: int) -> None:
            progress.update(task, completed=i, description=f"convert: {steps[i]}")

        step(0)
        config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
        if config.model_type != "gemma3_text":
            raise BackendError(f"{gguf}: a {config.model_type} model; only Gemma 3 GGUF files are converted here")
        step(1)
        # The class named directly: AutoTokenizer would parse the whole GGUF a second time to find it.
        tokenizer = GemmaTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tokenizer.chat_template = GEMMA3_CHAT_TEMPLATE
        check_tokenizer(tokenizer, gguf)
        step(2)
        loaded = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, config=config, dtype=torch.float32
        )
        # A model loaded from GGUF refuses save_pretrained; the same weights in a plain model of the same
        # config (built on the meta device, so nothing is allocated twice) save normally.
        config = loaded.config
        del config.quantization_config
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(loaded.state_dict(), assign=True)
        model.tie_weights()
        # llama.cpp ends generation at <end_of_turn> as well as at <eos>; so does the folder.
        model.generation_config.eos_token_id = [config.eos_token_id, tokenizer.convert_tokens_to_ids("<end_of_turn>")]
        step(3)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        progress.update(task, completed=len(steps), description=f"converted {gguf.name}")


def check_tokenizer(tokenizer: Any, gguf: Path) -> None:
    """Refuse to save a tokenizer that splits text differently from llama.cpp on the same GGUF."""
    import llama_cpp
    from llama_cpp._internals import LlamaModel

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True  # the vocabulary alone: no weights, no context
    vocab = LlamaModel(path_model=str(gguf), params=params, verbose=False)
    try:
        for text in PROBES:
            ours = tokenizer(text).input_ids
            theirs = vocab.tokenize(text.encode(), add_bos=True, special=True)
            if ours != theirs:
                raise BackendError(f"{gguf}: the converted tokenizer splits {text!r} as {ours}, llama.cpp as {theirs}")
    finally:
        vocab.close()
