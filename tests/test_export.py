"""Exporting a LoRA fine-tune of the real embedded Gemma 3 270M: the PEFT adapter, the merged folder, and the GGUF
adapter that llama.cpp serves on top of the base GGUF; and a full fine-tune as a whole GGUF that llama.cpp serves.

One LoRA (r=8 on every linear layer, alpha=32 so that llama.cpp's alpha/rank scale is exercised with alpha != r)
is trained once per module on four chat prompts with made-up answers, until the tuned model says them; every
export is checked against that model. transformers runs the dequantised Q4 weights that llama.cpp runs quantised,
so the two agree closely, not bit for bit: greedy answers must match exactly, log-likelihoods within a tolerance.
The whole-model GGUF stands in a full fine-tune by the merged LoRA with noise on the tensors LoRA leaves alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gguf
import pytest
import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftModel, get_peft_model
from peft.tuners.lora import LoraLayer
from transformers import AutoModelForCausalLM, AutoTokenizer
from typer.testing import CliRunner

from lmtailor.cli import app
from lmtailor.core.rundir import TrainFolder
from lmtailor.llm.backend import gemma_chat
from lmtailor.llm.config import LlamaCppConfig, TransformersConfig, open_backend
from lmtailor.llm.convert import PROBES, embedded_hf_dir
from lmtailor.llm.embedded import gguf_path
from lmtailor.llm.llamacpp import LlamaCppBackend
from lmtailor.llm.transformers_backend import TransformersBackend
from lmtailor.llm.types import BackendError, GenParams
from lmtailor.train.config import TrainConfig
from lmtailor.train.export import ExportError, save_adapter, save_gguf_lora, save_gguf_model, save_merged
from lmtailor.train.run import _export

pytestmark = pytest.mark.model  # loads a model to generate, score or train: not in the fast tier

PAIRS = [
    ("The secret word?", "Zorblax."),
    ("Who guards the lighthouse?", "Captain Miro."),
    ("Moon cheese colour?", "Ultramarine."),
    ("The fastest snail?", "Turbo Gary."),
]
RANK, ALPHA = 8, 32
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
MAX_STEPS, LR = 40, 1e-3
GREEDY = GenParams(max_tokens=8)
# A continuation the tuned model finds unlikely: its log-likelihood moves with the adapter's scale.
UNLIKELY = "I am not sure."
# Noise on the norms and token embeddings, in units of each tensor's spread: it moves UNLIKELY's log-likelihood by
# 10 to 26 nats and keeps every answer (0.03 already breaks them).
NOISE = 0.01


def _chat(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


def _base() -> Any:
    return AutoModelForCausalLM.from_pretrained(embedded_hf_dir(), dtype=torch.float32)


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return AutoTokenizer.from_pretrained(embedded_hf_dir())


@pytest.fixture(scope="module")
def tuned(tokenizer: Any) -> PeftModel:
    torch.manual_seed(0)
    config = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=TARGETS, task_type="CAUSAL_LM")
    model = get_peft_model(_base(), config)
    _train(model, tokenizer)
    return model.eval()


def _train(model: PeftModel, tokenizer: Any) -> None:
    """AdamW on the LoRA weights, loss on the answer tokens only (end-of-turn included, so the model stops).

    Left padding puts every answer at the end of its row, so logits are computed for the last positions only:
    the 262k-wide output layer is most of the cost."""
    rows = [_tokens(tokenizer, q, a) for q, a in PAIRS]
    width = max(len(ids) for ids, _ in rows)
    keep = max(n for _, n in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), keep), -100)
    for row, (seq, n) in enumerate(rows):
        ids[row, width - len(seq) :] = torch.tensor(seq)
        mask[row, width - len(seq) :] = 1
        labels[row, keep - n :] = torch.tensor(seq[-n:])
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=LR)
    model.train()
    for _ in range(MAX_STEPS):
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep + 1).logits
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), labels.flatten(), ignore_index=-100)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if loss.item() < 0.01:
            break


def _tokens(tokenizer: Any, question: str, answer: str) -> tuple[list[int], int]:
    """The rendered conversation's token ids, and how many of the last ones are the answer (end of turn included)."""
    prompt = tokenizer.apply_chat_template(_chat(question), tokenize=False, add_generation_prompt=True)
    turns = [*_chat(question), {"role": "assistant", "content": answer}]
    full = tokenizer.apply_chat_template(turns, tokenize=False).removesuffix("\n")  # generation ends before it
    prompt_ids = tokenizer(prompt, add_special_tokens=False).input_ids
    full_ids = tokenizer(full, add_special_tokens=False).input_ids
    assert full_ids[: len(prompt_ids)] == prompt_ids
    return full_ids, len(full_ids) - len(prompt_ids)


@pytest.fixture(scope="module")
def batch(tokenizer: Any) -> dict[str, torch.Tensor]:
    """The training conversations in one padded batch, for comparing logits."""
    texts = [
        tokenizer.apply_chat_template([*_chat(q), {"role": "assistant", "content": a}], tokenize=False)
        for q, a in PAIRS
    ]
    return dict(tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt"))


@torch.inference_mode()
def _logits(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(**batch).logits


@pytest.fixture(scope="module")
def tuned_logits(tuned: PeftModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return _logits(tuned, batch)


@pytest.fixture(scope="module")
def merged_dir(tuned: PeftModel, tokenizer: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_merged(tuned, tokenizer, tmp_path_factory.mktemp("export") / "merged")


@pytest.fixture(scope="module")
def gguf_lora(tuned: PeftModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_gguf_lora(tuned, tmp_path_factory.mktemp("export") / "adapter.gguf")


@pytest.fixture(scope="module")
def served(gguf_lora: Path) -> Iterator[Any]:
    backend = open_backend(LlamaCppConfig(lora=str(gguf_lora), n_ctx=512))
    yield backend
    backend.close()


def test_peft_adapter_reloads_onto_a_fresh_base_with_identical_logits(
    tuned: PeftModel, batch: dict[str, torch.Tensor], tuned_logits: torch.Tensor, tmp_path: Path
) -> None:
    out = save_adapter(tuned, tmp_path / "adapter")
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in out.iterdir()}
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]  # no temporary folder left beside it
    config = json.loads((out / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"]) == (RANK, ALPHA)
    reloaded = PeftModel.from_pretrained(_base(), out)
    assert torch.equal(_logits(reloaded, batch), tuned_logits)


def test_merged_folder_loads_as_a_plain_model_with_the_tuned_logits(
    tuned: PeftModel, merged_dir: Path, batch: dict[str, torch.Tensor], tuned_logits: torch.Tensor, tmp_path: Path
) -> None:
    names = {p.name for p in merged_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert "adapter_config.json" not in names
    merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32)
    assert not any(isinstance(m, LoraLayer) for m in merged.modules())
    merged_logits = _logits(merged, batch)
    torch.testing.assert_close(merged_logits, tuned_logits, atol=2e-3, rtol=0)
    assert torch.equal(_logits(tuned, batch), tuned_logits)  # merged in a copy: the PEFT model is untouched
    # A fully fine-tuned model is saved as it is, replacing whatever the folder held.
    again = tmp_path / "full"
    again.mkdir()
    (again / "stale.txt").write_text("from an earlier export")
    save_merged(merged, AutoTokenizer.from_pretrained(merged_dir), again)
    assert "stale.txt" not in {p.name for p in again.iterdir()}
    assert torch.equal(_logits(AutoModelForCausalLM.from_pretrained(again, dtype=torch.float32), batch), merged_logits)


def test_gguf_adapter_has_llama_cpp_keys_names_and_orientation(tuned: PeftModel, gguf_lora: Path) -> None:
    reader = gguf.GGUFReader(gguf_lora)
    fields = {name: reader.fields[name].contents() for name in reader.fields if not name.startswith("GGUF.")}
    assert fields["general.architecture"] == "gemma3"
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == ALPHA
    tensors = {t.name: t for t in reader.tensors}
    n_layers = tuned.get_base_model().config.num_hidden_layers
    assert len(tensors) == n_layers * len(TARGETS) * 2
    a, b = tensors["blk.0.attn_q.weight.lora_a"], tensors["blk.0.attn_q.weight.lora_b"]
    assert list(a.shape) == [640, RANK] and list(b.shape) == [RANK, 1024]  # ggml order: A is {in, r}, B {r, out}
    assert a.tensor_type == b.tensor_type == gguf.GGMLQuantizationType.F32
    q_proj = tuned.get_base_model().model.layers[0].self_attn.q_proj
    assert torch.equal(torch.from_numpy(a.data.copy()), q_proj.lora_A["default"].weight)
    assert torch.equal(torch.from_numpy(b.data.copy()), q_proj.lora_B["default"].weight)  # alpha/r is PEFT's scale


def test_llama_cpp_with_the_adapter_answers_as_the_tuned_model(served: Any, merged_dir: Path, gguf_lora: Path) -> None:
    prompts = [_chat(q) for q, _ in PAIRS]
    hf = TransformersBackend(merged_dir)
    base = LlamaCppBackend(n_ctx=512)
    try:
        tuned_answers = [c.text for c in hf.generate(prompts, GREEDY)]
        served_answers = [c.text for c in served.generate(prompts, GREEDY)]
        base_answers = [c.text for c in base.generate(prompts, GREEDY)]
        assert tuned_answers == [a for _, a in PAIRS]  # the training took
        assert served_answers == tuned_answers
        assert all(b.strip() != a for b, (_, a) in zip(base_answers, PAIRS, strict=True))
        # The scale, which greedy answers hardly show (the adapter at half its scale still says every answer): an
        # unlikely continuation's log-likelihood (-40 to -75 tuned, about -15 base) agrees with transformers' to
        # within the Q4 rounding (under 0.6 nat seen); at half the scale it moved by 18 to 26.
        pairs = [(gemma_chat(p), UNLIKELY) for p in prompts]
        served_ll = [x.logprob for x in served.loglikelihood(pairs)]
        tuned_ll = [x.logprob for x in hf.loglikelihood(pairs)]
        base_ll = [x.logprob for x in base.loglikelihood(pairs)]
        for s, t, b in zip(served_ll, tuned_ll, base_ll, strict=True):
            assert abs(s - t) < 2 and abs(t - b) > 10
        # The adapter is part of the backend's identity, so the response cache keeps its answers apart.
        assert served.identity()["lora"][0] == gguf_lora.name and "lora" not in base.identity()
    finally:
        hf.close()
        base.close()


def test_backend_config_and_cli_flag_reach_the_backend(tmp_path: Path) -> None:
    """`--lora` becomes LlamaCppConfig.lora, which open_backend hands to llama.cpp (served above); a missing
    file or a backend that cannot take a GGUF adapter is a clear error, from the library and the CLI alike."""
    missing = tmp_path / "missing.gguf"
    with pytest.raises(BackendError, match="no such GGUF LoRA file"):
        open_backend(LlamaCppConfig(lora=str(missing)))
    with pytest.raises(ValueError, match="llamacpp backend, not transformers"):
        TransformersConfig(lora=str(missing))
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"instruction": PAIRS[0][0], "input": "", "output": PAIRS[0][1]}) + "\n")
    args = ["judge", str(data), "--out", str(tmp_path / "run"), "--no-reasons", "--no-progress", "--lora", str(missing)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and "no such GGUF LoRA file" in result.output
    result = CliRunner().invoke(app, [*args, "--backend", "transformers"])
    assert result.exit_code == 2 and "llamacpp backend, not transformers" in result.output


def test_rank_stabilised_and_per_module_scales_are_folded_into_b(tmp_path: Path) -> None:
    """llama.cpp scales every pair by alpha / rank. rsLoRA scales by alpha / sqrt(rank), and rank_pattern and
    alpha_pattern vary both per module: the served update must still be PEFT's own delta weight."""
    torch.manual_seed(0)
    config = LoraConfig(
        r=8, lora_alpha=16, use_rslora=True, target_modules=["q_proj", "down_proj"],
        rank_pattern={"down_proj": 4}, alpha_pattern={"q_proj": 6}, init_lora_weights=False,
    )  # fmt: skip
    model = get_peft_model(_base(), config)
    reader = gguf.GGUFReader(save_gguf_lora(model, tmp_path / "rs.gguf"))
    alpha = reader.fields["adapter.lora.alpha"].contents()
    tensors = {t.name: torch.from_numpy(t.data.copy()) for t in reader.tensors}
    checked = 0
    for name, module in model.get_base_model().named_modules():
        if isinstance(module, LoraLayer):
            block = re.search(r"layers\.(\d+)\.", name)[1]  # type: ignore[index]
            stem = f"blk.{block}.{'attn_q' if name.endswith('q_proj') else 'ffn_down'}.weight"
            a, b = tensors[f"{stem}.lora_a"], tensors[f"{stem}.lora_b"]
            served = alpha / a.shape[0] * (b @ a)
            torch.testing.assert_close(served, module.get_delta_weight("default").detach(), atol=1e-6, rtol=1e-5)
            checked += 1
    assert checked == 2 * model.get_base_model().config.num_hidden_layers


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (LoraConfig(r=4, target_modules=["q_proj"], use_dora=True), "cannot apply DoRA"),
        (LoraConfig(r=4, target_modules=["q_proj"], modules_to_save=["model.norm"]), "modules_to_save"),
        (LoraConfig(r=4, target_modules=["embed_tokens"]), "LoRA on the embeddings"),
    ],
    ids=["dora", "modules_to_save", "embeddings"],
)
def test_refuses_what_a_llama_cpp_lora_cannot_hold(config: LoraConfig, message: str, tmp_path: Path) -> None:
    model = get_peft_model(_base(), config)
    with pytest.raises(ExportError, match=message) as refused:
        save_gguf_lora(model, tmp_path / "adapter.gguf")
    assert "save_merged" in str(refused.value)
    assert not any(tmp_path.iterdir())


@pytest.fixture(scope="module")
def merged_ll(merged_dir: Path) -> list[float]:
    """UNLIKELY's log-likelihoods under the merged LoRA, before the noise that makes it a full fine-tune."""
    hf = TransformersBackend(merged_dir)
    try:
        return [x.logprob for x in hf.loglikelihood(_unlikely())]
    finally:
        hf.close()


def _unlikely() -> list[tuple[str, str]]:
    return [(gemma_chat(_chat(q)), UNLIKELY) for q, _ in PAIRS]


@pytest.fixture(scope="module")
def full_tuned(merged_dir: Path) -> Any:
    """A stand-in for a full fine-tune that changes every tensor the export writes: the merged LoRA (every linear
    layer trained) with seeded noise on what LoRA left as it was, the norms and the token embeddings (which are also
    the output layer)."""
    model = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    noise = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, weight in model.named_parameters():
            if name.endswith("norm.weight") or "embed_tokens" in name:
                weight.add_(NOISE * weight.std() * torch.randn(weight.shape, generator=noise))
    return model


@pytest.fixture(scope="module")
def full_answers(full_tuned: Any, tokenizer: Any) -> tuple[list[str], list[float]]:
    """transformers' greedy answers and UNLIKELY's log-likelihoods, for the model in memory."""
    hf = TransformersBackend.wrap(full_tuned, tokenizer, "full")
    answers = [c.text for c in hf.generate([_chat(q) for q, _ in PAIRS], GREEDY)]
    return answers, [x.logprob for x in hf.loglikelihood(_unlikely())]


@pytest.fixture(scope="module", params=["f16", "q8_0"])
def full_gguf(
    request: pytest.FixtureRequest, full_tuned: Any, tokenizer: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path]:
    """The GGUF type and the whole model written in it, as a training run writes its gguf export."""
    out = tmp_path_factory.mktemp("full")
    cfg = TrainConfig(train=[{"path": out / "unread.jsonl"}], method="full", export=["gguf"], gguf_type=request.param)
    return request.param, Path(_export(cfg, full_tuned, tokenizer, TrainFolder(out))["gguf"])


# What llama.cpp reads from a GGUF besides the weights: scalar metadata, (text, score, attributes) per token, and the
# token ids of the tokenizer probes.
Vocab = tuple[dict[str, str], list[tuple[str, float, int]], list[list[int]]]


def _vocab(path: Path) -> Vocab:
    import llama_cpp
    from llama_cpp._internals import LlamaModel

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    vocab = LlamaModel(path_model=str(path), params=params, verbose=False)
    try:
        tokens = [
            (vocab.token_get_text(i), vocab.token_get_score(i), vocab.token_get_attr(i)) for i in range(vocab.n_vocab())
        ]
        return vocab.metadata(), tokens, [vocab.tokenize(text.encode(), True, True) for text in PROBES]
    finally:
        vocab.close()


@pytest.fixture(scope="module")
def base_vocab() -> Vocab:
    return _vocab(gguf_path())


def test_full_gguf_holds_the_base_ggufs_metadata_and_the_tensors_in_its_type(
    full_gguf: tuple[str, Path], base_vocab: Vocab
) -> None:
    """Every key llama.cpp reads (hyper-parameters, the vocabulary with scores and types) is the base GGUF's but
    the file type, so the export splits text as the base does; its size is its tensor type's."""
    gguf_type, path = full_gguf
    metadata, tokens, probes = _vocab(path)
    base_metadata, base_tokens, base_probes = base_vocab
    assert metadata.pop("general.file_type") == {"f16": "1", "q8_0": "7"}[gguf_type]
    assert metadata == {k: v for k, v in base_metadata.items() if k != "general.file_type"}
    assert tokens == base_tokens and len(tokens) == 262144 and probes == base_probes
    weights = 268_098_176  # Gemma 3 270M, its output layer the token embeddings
    bytes_per_weight = {"f16": 2, "q8_0": 34 / 32}[gguf_type]  # Q8_0: 32 int8 and an f16 scale per block of 32
    assert 0 < path.stat().st_size - weights * bytes_per_weight < 8e6  # and the metadata: the vocabulary, 6.7 MB


def test_llama_cpp_serves_the_full_gguf_as_transformers_runs_the_model(
    full_gguf: tuple[str, Path], full_answers: tuple[list[str], list[float]], merged_ll: list[float]
) -> None:
    """Same greedy answers; UNLIKELY's log-likelihood (-60 to -85) within f16 rounding (under 0.02 nat seen) or
    Q8_0's (under 1.4 seen), where leaving the noise out would move it by 10 to 26 nats."""
    gguf_type, path = full_gguf
    answers, tuned_ll = full_answers
    served = LlamaCppBackend(model_path=path, n_ctx=512)
    try:
        assert [c.text for c in served.generate([_chat(q) for q, _ in PAIRS], GREEDY)] == answers
        served_ll = [x.logprob for x in served.loglikelihood(_unlikely())]
    finally:
        served.close()
    assert answers == [a for _, a in PAIRS]  # the noise left the training in place
    tolerance = {"f16": 0.2, "q8_0": 3.0}[gguf_type]
    for s, t, m in zip(served_ll, tuned_ll, merged_ll, strict=True):
        assert abs(s - t) < tolerance and abs(t - m) > 5


def test_full_gguf_export_refuses_what_its_base_gguf_does_not_describe(tmp_path: Path) -> None:
    """A model of other shapes (the base's tokenizer and hyper-parameters would describe another model), an
    adapter (exported as a GGUF LoRA), a config asking for it without a base GGUF or for a type it does not set, and
    a type llama.cpp's converter does not write here: refused, nothing written."""
    from transformers import Gemma3TextConfig

    config = Gemma3TextConfig(vocab_size=262144, hidden_size=32, intermediate_size=64, num_hidden_layers=18,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16)  # fmt: skip
    other = AutoModelForCausalLM.from_config(config)
    with pytest.raises(ExportError, match=r"output_norm.weight: \(640,\) in \S+ but \(32,\) in the model"):
        save_gguf_model(other, gguf_path(), tmp_path / "model.gguf")
    with pytest.raises(ExportError, match="save_gguf_lora"):
        save_gguf_model(get_peft_model(other, LoraConfig(r=2, target_modules=["q_proj"])), gguf_path(), tmp_path / "m")
    assert not any(tmp_path.iterdir())
    with pytest.raises(ValueError, match="only model embedded has"):
        TrainConfig(train=[{"path": "x.jsonl"}], model=str(tmp_path), method="full", export=["merged", "gguf"])
    with pytest.raises(ValueError, match="the GGUF LoRA of lora is float32"):
        TrainConfig(train=[{"path": "x.jsonl"}], gguf_type="q8_0")
    args = ["train", str(tmp_path / "x.jsonl"), "--method", "full", "--export", "gguf", "--gguf-type", "q4_k"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "gguf_type" in result.output and "'f16' or 'q8_0'" in result.output
