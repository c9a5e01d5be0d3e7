"""Load the model to train and prepare it for the chosen method (LoRA, QLoRA, DoRA or full fine-tuning)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lmtailor.train.config import TrainConfig

# Every linear layer of a decoder block, per architecture: LoRA on all of them learns more than on attention
# alone (QLoRA paper) for a small cost. Architectures not listed get every nn.Linear except the output head.
_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TARGET_MODULES: dict[str, list[str]] = {
    **dict.fromkeys(("gemma", "gemma2", "gemma3", "gemma3_text", "llama", "mistral", "qwen2", "qwen3"), _PROJECTIONS),
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
}


class TrainError(RuntimeError):
    """A run that cannot start as configured; the message says what to change."""


def model_dir(name: str) -> Path:
    """The folder to load: the embedded model's converted copy, or the folder given."""
    if name == "embedded":
        from lmtailor.llm.convert import embedded_hf_dir

        return embedded_hf_dir()
    path = Path(name)
    if not (path / "config.json").is_file():
        raise TrainError(f"{path}: not a Hugging Face model folder (no config.json); give a local folder or 'embedded'")
    return path


def load_tokenizer(path: Path) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(path: Path, cfg: TrainConfig) -> Any:
    """The model in float32 on CPU (bf16 on a CUDA GPU that has it), wrapped for the method."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": _dtype()}
    if cfg.method == "qlora":
        kwargs["quantization_config"] = _four_bit()
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if cfg.method == "full":
        return model
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if cfg.method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    lora = LoraConfig(
        r=cfg.lora.r,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=cfg.lora.target_modules or target_modules(model),
        use_dora=cfg.method == "dora",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def target_modules(model: Any) -> list[str]:
    """The known names for the architecture, else every linear layer inside the decoder blocks."""
    known = TARGET_MODULES.get(model.config.model_type)
    if known:
        return known
    head = model.get_output_embeddings()
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m is not head}
    if not names:
        raise TrainError(f"{model.config.model_type}: no linear layers found for LoRA; set lora.target_modules")
    return sorted(names)


def _dtype() -> torch.dtype:
    """bf16 where a GPU does it natively; float32 on CPU, where bf16 matmuls are slower on most machines."""
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def _four_bit() -> Any:
    """QLoRA's NF4 quantisation, or a clear refusal: bitsandbytes needs a CUDA GPU."""
    if not torch.cuda.is_available():
        raise TrainError("QLoRA needs a CUDA GPU (bitsandbytes 4-bit kernels); on this machine use --method lora")
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise TrainError("QLoRA needs bitsandbytes: pip install bitsandbytes (CUDA only)") from None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=_dtype(),
    )
