"""Export a fine-tuned model four ways: the PEFT adapter, a merged model folder, a GGUF LoRA for llama.cpp, and a
fully fine-tuned model as a whole GGUF for llama.cpp.

The GGUF adapter is what serves the tuned model at llama.cpp speed: llama.cpp loads it on top of the base GGUF
(`BackendConfig(lora=...)`, `--lora`), so the quantised base is reused as it is. It is written the way
llama.cpp's convert_lora_to_gguf.py writes one: general.type `adapter`, adapter.type `lora`, the base model's
architecture, and per targeted weight `<gguf name>.lora_a` (PEFT's A, rank x in) and `.lora_b` (B, out x rank)
in float32. llama.cpp scales every pair by adapter.lora.alpha / rank; where PEFT's own scale differs from that
(rank-stabilised LoRA: alpha / sqrt(rank); per-module rank_pattern and alpha_pattern) the difference is folded
into B, so the served model computes what PEFT computed. That script writes lora_alpha unchanged and so
mis-scales such adapters.

A fully fine-tuned model has no base to apply on top of, so it is written whole (`save_gguf_model`), the way
llama.cpp's convert_hf_to_gguf.py writes one: F32 norms and 1-D tensors, every other weight in the file type
(F16, or Q8_0), Gemma 3's RMSNorm weights w stored as 1 + w (transformers computes x * (1 + w), llama.cpp x * w),
and the output layer left out where it is the token embeddings. The metadata (tokenizer, hyper-parameters) is
copied from the GGUF the model was converted from, which fine-tuning changed neither of: this inverts what
llm/convert.py did, and the served model splits text exactly as the base GGUF does. Every tensor's shape is checked
against that GGUF's, the token embeddings' rows included (llama.cpp's converter trims rows past the vocabulary;
a model converted from the GGUF has none).

What a llama.cpp adapter cannot hold is refused with the way out (the merged export): DoRA and the other LoRA
variants, which change the forward pass; modules_to_save and trainable tokens, which are whole tensors; LoRA on
the embeddings, which Gemma 3 shares with the output layer.

Every export is written beside its target and renamed into place, so a killed export leaves no half file.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import gguf
import torch
from peft import PeftModel, get_peft_model_state_dict
from peft.tuners.lora import LoraLayer

from lmtailor.core.io import atomic_path
from lmtailor.train.config import GgufType

# Hugging Face model_type -> llama.cpp architecture, for bases whose llama.cpp conversion only renames the
# weights LoRA targets (Gemma 3's changes norms and trims embeddings). Llama's, for one, permutes q and k, which
# an adapter would have to follow, so a model type joins this table only once its conversion has been checked.
GGUF_ARCH = {"gemma3_text": gguf.MODEL_ARCH.GEMMA3}
# What llama.cpp's conversion changes besides the names: the constant added to the RMSNorm weights.
NORM_SHIFT = {gguf.MODEL_ARCH.GEMMA3: 1.0}
# The file type a whole-model GGUF is written in -> llama.cpp's file type and the tensor type of its weights.
GGUF_TYPES: dict[GgufType, tuple[gguf.LlamaFileType, gguf.GGMLQuantizationType]] = {
    "f16": (gguf.LlamaFileType.MOSTLY_F16, gguf.GGMLQuantizationType.F16),
    "q8_0": (gguf.LlamaFileType.MOSTLY_Q8_0, gguf.GGMLQuantizationType.Q8_0),
}
# Keys the written file sets itself rather than copying from the base GGUF.
_OWN_KEYS = {gguf.Keys.General.ARCHITECTURE, gguf.Keys.General.FILE_TYPE, gguf.Keys.General.QUANTIZATION_VERSION}
MERGED_INSTEAD = "export the merged model instead (save_merged) and convert that with llama.cpp's convert_hf_to_gguf.py"


class ExportError(ValueError):
    """A model that this export cannot write faithfully."""


def save_adapter(peft_model: PeftModel, out_dir: Path | str) -> Path:
    """The PEFT adapter (adapter_config.json, adapter_model.safetensors): small, and reloads onto the base."""
    _require_peft(peft_model, "save_adapter")
    out = Path(out_dir)
    with atomic_path(out) as tmp:
        peft_model.save_pretrained(tmp)
    return out


def save_merged(model: Any, tokenizer: Any, out_dir: Path | str) -> Path:
    """A plain model folder (safetensors, config, tokenizer) that `AutoModelForCausalLM.from_pretrained` loads.

    A PEFT model is merged in a copy: merging in place and unmerging afterwards would not give back the base
    weights bit for bit, and the caller's model may still be trained or exported. A fully fine-tuned model is
    saved as it is.
    """
    out = Path(out_dir)
    with atomic_path(out) as tmp:
        if isinstance(model, PeftModel):
            copy.deepcopy(model).merge_and_unload(safe_merge=True).save_pretrained(tmp)
        else:
            model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return out


def save_gguf_lora(peft_model: PeftModel, out_path: Path | str) -> Path:
    """The active adapter as a GGUF LoRA that llama.cpp applies on top of the base model's GGUF."""
    _require_peft(peft_model, "save_gguf_lora")
    adapter = peft_model.active_adapter
    config = peft_model.peft_config[adapter]
    base = peft_model.get_base_model()
    arch = _gguf_arch(base, "GGUF LoRA export")
    _refuse_extras(peft_model, adapter)
    names = gguf.get_tensor_name_map(arch, base.config.num_hidden_layers)
    alpha = float(config.lora_alpha)
    tensors: list[tuple[str, torch.Tensor]] = []
    for hf_name, a, b, scale in _lora_pairs(base, adapter):
        name = names.get_name(hf_name, try_suffixes=(".weight",))
        if name is None:
            raise ExportError(f"{hf_name}: llama.cpp's {gguf.MODEL_ARCH_NAMES[arch]} has no such weight")
        if name == "output.weight" and base.config.tie_word_embeddings:
            raise ExportError(
                f"{hf_name}: llama.cpp shares the output layer with the token embeddings; {MERGED_INSTEAD}"
            )
        rank = a.shape[0]
        served = alpha / rank if alpha else 1.0  # llama.cpp's scale for this pair (no alpha: 1)
        tensors += [(f"{name}.lora_a", a), (f"{name}.lora_b", b * (scale / served))]
    if not tensors:
        raise ExportError(f"adapter {adapter!r} has no LoRA weights to export")
    out = Path(out_path)
    with atomic_path(out) as tmp:
        writer = gguf.GGUFWriter(tmp, gguf.MODEL_ARCH_NAMES[arch])
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        for name, tensor in tensors:
            writer.add_tensor(name, tensor.to(torch.float32).contiguous().numpy())
        _write(writer)
    return out


def save_gguf_model(model: Any, base_gguf: Path | str, out_path: Path | str, gguf_type: GgufType = "f16") -> Path:
    """A fully fine-tuned model as one GGUF that llama.cpp serves on its own, with `base_gguf`'s tokenizer and
    hyper-parameters: the GGUF the model was converted from (its every tensor must have the model's shape, or the
    copied metadata would describe another model)."""
    if isinstance(model, PeftModel):
        raise ExportError("save_gguf_model writes a fully fine-tuned model; an adapter is exported with save_gguf_lora")
    arch = _gguf_arch(model, "GGUF model export")
    config = model.config
    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    file_type, weight_type = GGUF_TYPES[gguf_type]
    tensors: dict[str, tuple[torch.Tensor, gguf.GGMLQuantizationType]] = {}
    for hf_name, tensor in model.state_dict().items():
        name = names.get_name(hf_name, try_suffixes=(".weight",))
        if name is None:
            raise ExportError(f"{hf_name}: llama.cpp's {gguf.MODEL_ARCH_NAMES[arch]} has no such weight")
        if name == "output.weight" and config.tie_word_embeddings:
            continue  # llama.cpp uses token_embd for the output layer when there is none
        data = tensor.detach().to("cpu", torch.float32)
        if hf_name.endswith("norm.weight"):
            data = data + NORM_SHIFT[arch]
        f32 = data.ndim <= 1 or name.endswith("_norm.weight")  # the type llama.cpp's kernels take norms in
        tensors[name] = data, gguf.GGMLQuantizationType.F32 if f32 else weight_type
    path = Path(base_gguf)
    stat = path.stat()
    base = _read_base(path.resolve(), stat.st_size, stat.st_mtime_ns)
    _check_against(base, {name: tuple(data.shape) for name, (data, _) in tensors.items()}, arch, path)
    out = Path(out_path)
    with atomic_path(out) as tmp:
        writer = gguf.GGUFWriter(tmp, gguf.MODEL_ARCH_NAMES[arch])
        for key, value, kind, sub in base.fields:
            if key not in _OWN_KEYS:
                writer.add_key_value(key, value, kind, sub_type=sub)
        writer.add_file_type(file_type)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        for name, (data, qtype) in tensors.items():
            writer.add_tensor(name, gguf.quants.quantize(data.numpy(), qtype), raw_dtype=qtype)
        _write(writer)
    return out


@dataclass(frozen=True)
class _BaseGguf:
    fields: tuple[tuple[str, Any, gguf.GGUFValueType, gguf.GGUFValueType | None], ...]  # key, value, type, item type
    shapes: dict[str, tuple[int, ...]]  # tensor name -> shape, outermost dimension first (as torch's)


@lru_cache(maxsize=2)
def _read_base(path: Path, size: int, mtime_ns: int) -> _BaseGguf:
    """A GGUF's metadata and tensor shapes, read once per file version and process: gguf's reader parses the 262k
    entries of Gemma's vocabulary one value at a time (about 15 s of CPU)."""
    reader = gguf.GGUFReader(path)
    fields = tuple(
        (f.name, f.contents(), f.types[0], f.types[-1] if f.types[0] == gguf.GGUFValueType.ARRAY else None)
        for f in reader.fields.values()
        if not f.name.startswith("GGUF.")  # the reader's own entries for the header
    )
    return _BaseGguf(fields, {t.name: tuple(int(n) for n in reversed(t.shape)) for t in reader.tensors})


def _gguf_arch(model: Any, what: str) -> gguf.MODEL_ARCH:
    arch = GGUF_ARCH.get(model.config.model_type)
    if arch is None:
        known = ", ".join(sorted(GGUF_ARCH))
        raise ExportError(f"{what} supports {known} models, not {model.config.model_type}; {MERGED_INSTEAD}")
    return arch


def _check_against(base: _BaseGguf, shapes: dict[str, tuple[int, ...]], arch: gguf.MODEL_ARCH, path: Path) -> None:
    """Refuse a base GGUF whose metadata would not describe the model: another architecture, or a tensor that the
    model lacks or has in another shape."""
    found = {key: value for key, value, *_ in base.fields}.get(gguf.Keys.General.ARCHITECTURE)
    if found != gguf.MODEL_ARCH_NAMES[arch]:
        raise ExportError(f"{path}: a {found} GGUF, not {gguf.MODEL_ARCH_NAMES[arch]}; give the model's own base GGUF")
    for name, shape in base.shapes.items():
        if shapes.get(name) != shape:
            raise ExportError(
                f"{name}: {shape} in {path.name} but {shapes.get(name)} in the model; the model was not converted"
                " from that GGUF"
            )


def _write(writer: gguf.GGUFWriter) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _require_peft(model: Any, what: str) -> None:
    if not isinstance(model, PeftModel):
        raise ExportError(f"{what} needs a PEFT model; a fully fine-tuned model is exported with save_merged")


def _refuse_extras(peft_model: PeftModel, adapter: str) -> None:
    """Refuse an adapter that holds more than LoRA A and B matrices: llama.cpp would drop or misplace the rest."""
    if peft_model.peft_config[adapter].use_dora:
        raise ExportError(f"llama.cpp cannot apply DoRA (weight-decomposed LoRA) adapters; {MERGED_INSTEAD}")
    keys = get_peft_model_state_dict(peft_model, adapter_name=adapter)
    extra = [k for k in keys if not k.endswith((".lora_A.weight", ".lora_B.weight"))]
    embedding = next((k for k in extra if "lora_embedding_" in k), None)
    if embedding:  # its state also holds the embedding matrix itself, which the message below would blame
        raise ExportError(f"{embedding}: LoRA on the embeddings is not exported to GGUF; {MERGED_INSTEAD}")
    if extra:
        raise ExportError(
            f"{extra[0]}: the adapter holds more than LoRA matrices (modules_to_save, trainable tokens, LoRA biases,"
            f" resized embeddings), which a llama.cpp LoRA cannot carry; {MERGED_INSTEAD}"
        )


def _lora_pairs(base: torch.nn.Module, adapter: str) -> Iterator[tuple[str, torch.Tensor, torch.Tensor, float]]:
    """(Hugging Face weight name, A, B, PEFT's scale) for every linear layer the adapter targets."""
    for name, module in base.named_modules():
        if not isinstance(module, LoraLayer) or adapter not in module.lora_A:
            continue
        if adapter in module.lora_variant:
            variant = type(module.lora_variant[adapter]).__name__
            raise ExportError(f"{name}: llama.cpp applies plain LoRA only, not {variant}; {MERGED_INSTEAD}")
        lora_a, lora_b = module.lora_A[adapter], module.lora_B[adapter]
        if not isinstance(lora_a, torch.nn.Linear) or not isinstance(lora_b, torch.nn.Linear):
            raise ExportError(f"{name}: only LoRA on linear layers is exported to GGUF; {MERGED_INSTEAD}")
        yield f"{name}.weight", lora_a.weight.detach(), lora_b.weight.detach(), float(module.scaling[adapter])
