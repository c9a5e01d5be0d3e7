"""Training mechanics, proved on a tiny randomly initialised Gemma 3 that shares the embedded model's tokenizer
(the answer mask token by token, packing without cross-attention, the loss on kept logits, SIGKILL and resume,
two gloo processes), then the three methods from the CLI on the real embedded model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from typer.testing import CliRunner

from lmtailor.cli import app
from lmtailor.core.records import Example
from lmtailor.prompting.template import Template, TemplateConfig
from lmtailor.train.data import IGNORE, Tokenized, bucket, collate_packed, collate_padded, pack, tokenize
from lmtailor.train.trainer import AnswerLossTrainer

pytestmark = pytest.mark.model  # loads a model to generate, score or train: not in the fast tier

runner = CliRunner()
# Probes kept small: these tests check that learning and forgetting are measured and reported, not their size.
QUICK_EVAL = ["--eval-limit", "2", "--general-texts", "2", "--mmlu", "2", "--max-new-tokens", "4"]
NO_PROBES = ["--eval-limit", "0", "--general-texts", "0", "--mmlu", "0"]


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    from lmtailor.llm.convert import embedded_hf_dir

    return AutoTokenizer.from_pretrained(embedded_hf_dir())


@pytest.fixture(scope="module")
def tiny_model(tokenizer: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Gemma 3 with the real tokenizer and chat template, saved as a model folder."""
    from transformers import AutoModelForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=64,
                              max_position_embeddings=1024)  # fmt: skip
    folder = tmp_path_factory.mktemp("tiny-gemma3")
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def sql_data(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Spider dev questions with their gold SQL as alpaca records: real data, short answers."""
    rows = json.loads((shared_data / "text2sql" / "spider" / "dev.json").read_text())[:24]
    path = tmp_path_factory.mktemp("data") / "spider24.jsonl"
    path.write_text("".join(json.dumps({"instruction": f"{r['question']} (database {r['db_id']})",
                                        "input": "", "output": r["query"]}) + "\n" for r in rows))  # fmt: skip
    return path


def _chat() -> Example:
    msgs = [
        {"role": "system", "content": "Answer in SQL."},
        {"role": "user", "content": "How many singers are there?"},
        {"role": "assistant", "content": "SELECT count(*) FROM singer"},
        {"role": "user", "content": "And concerts?"},
        {"role": "assistant", "content": "SELECT count(*) FROM concert"},
    ]
    return Example("t:0", msgs, "database concert_singer")


def test_loss_mask_covers_exactly_the_answers_token_by_token(tokenizer: Any) -> None:
    """Every token is labelled -100 except those of the two answers and their end-of-turn markers; the
    segment-wise tokenisation equals tokenising the whole rendered conversation."""
    template = Template(tokenizer)
    (item,), stats = tokenize([_chat()], template, max_length=512)
    full = tokenizer.apply_chat_template(_messages(_chat()), tokenize=False)
    assert item.input_ids == tokenizer(full, add_special_tokens=False).input_ids
    pieces = [tokenizer.decode([t]) for t in item.input_ids]
    trained = "".join(p for p, label in zip(pieces, item.labels, strict=True) if label != IGNORE)
    assert trained == "SELECT count(*) FROM singer<end_of_turn>\nSELECT count(*) FROM concert<end_of_turn>\n"
    for p, t, label in zip(pieces, item.input_ids, item.labels, strict=True):
        assert label in (IGNORE, t), p
    prompt_text = "".join(p for p, label in zip(pieces, item.labels, strict=True) if label == IGNORE)
    assert prompt_text == (
        "<bos><start_of_turn>user\nAnswer in SQL.\n\nHow many singers are there?<end_of_turn>\n<start_of_turn>model\n"
        "<start_of_turn>user\nAnd concerts?\n\ndatabase concert_singer<end_of_turn>\n<start_of_turn>model\n"
    )  # the system prompt joins the first turn, the input the last (the instruction it goes with)
    assert stats.answer_tokens == sum(label != IGNORE for label in item.labels) and stats.truncated == 0

    last = Template(tokenizer, TemplateConfig(train_on="last"))
    (only_last,), _ = tokenize([_chat()], last, max_length=512)
    text = "".join(tokenizer.decode([t]) for t, lab in zip(only_last.input_ids, only_last.labels, strict=True)
                   if lab != IGNORE)  # fmt: skip
    assert text == "SELECT count(*) FROM concert<end_of_turn>\n"


def _messages(ex: Example) -> list[dict[str, Any]]:
    from lmtailor.core.records import merged_input

    return merged_input(ex, ex.messages)


def test_plain_template_for_base_models_masks_the_prompt(tokenizer: Any) -> None:
    ex = Example("t:1", [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}])
    (item,), _ = tokenize([ex], Template(tokenizer, TemplateConfig(kind="plain")), max_length=64)
    answer = tokenizer.decode([t for t, lab in zip(item.input_ids, item.labels, strict=True) if lab != IGNORE])
    assert answer == "Blue.<eos>"
    assert tokenizer.decode(item.input_ids).startswith("<bos>### Instruction:\nName a colour.\n\n### Response:\n")


def test_truncation_is_counted_and_an_answer_cut_away_is_rejected(tokenizer: Any) -> None:
    long_answer = Example("t:2", [{"role": "user", "content": "Count."}, {"role": "assistant", "content": "one " * 80}])
    long_prompt = Example("t:3", [{"role": "user", "content": "word " * 80}, {"role": "assistant", "content": "ok"}])
    items, stats = tokenize([long_answer, long_prompt], Template(tokenizer), max_length=40)
    assert [t.id for t in items] == ["t:2"] and len(items[0].input_ids) == 40
    assert stats.truncated == 1 and stats.truncated_answer_tokens > 0
    assert stats.rejected == [{"id": "t:3", "reason": "answer_truncated_away",
                               "detail": stats.rejected[0]["detail"]}]  # fmt: skip
    assert "max_length 40" in stats.rejected[0]["detail"]


def test_packed_examples_do_not_attend_to_each_other(tiny_model: Path, tokenizer: Any) -> None:
    """Logits of each example inside a packed micro-batch (two rows, the shorter one padded) equal its logits
    alone; positions restart at each example."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    pairs = [("Hi", "Hello there."), ("2+2?", "4"), ("Name a fish.", "Trout"), ("Say yes.", "Yes")]
    exs = [Example(f"t:{i}", [{"role": "user", "content": q}, {"role": "assistant", "content": a}])
           for i, (q, a) in enumerate(pairs)]  # fmt: skip
    items, _ = tokenize(exs, Template(tokenizer), max_length=64)
    rows = pack(items, tokens_per_row=40)
    assert len(rows) == 2 and all(len(row) == 2 for row in rows)
    batch = collate_packed(rows, pad_id=tokenizer.pad_token_id)
    assert batch["input_ids"].shape[0] == 2
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        for r, row in enumerate(rows):
            start = 0
            for item in row:
                alone = model(input_ids=torch.tensor([item.input_ids]), use_cache=False).logits[0]
                n = len(item.input_ids)
                assert batch["position_ids"][r, start].item() == 0
                torch.testing.assert_close(packed[r, start : start + n], alone, atol=1e-4, rtol=1e-4)
                start += n
    # each target is the next token of the same example; the first token of the next one is never a target
    for r, row in enumerate(rows):
        ids, targets = batch["input_ids"][r], batch["shift_labels"][r]
        ends = torch.tensor([len(t.input_ids) for t in row]).cumsum(0) - 1
        assert (targets[ends] == IGNORE).all()
        kept = targets != IGNORE
        assert torch.equal(targets[kept], ids[1:][kept[:-1]])


def test_length_buckets_pad_on_the_right_and_train_on_the_same_loss(
    tiny_model: Path, tokenizer: Any, tmp_path: Path
) -> None:
    """--no-packing: examples of similar length together, padded; the loss equals the packed one."""
    from transformers import AutoModelForCausalLM, TrainingArguments

    exs = [
        Example(f"t:{i}", [{"role": "user", "content": q}, {"role": "assistant", "content": a}])
        for i, (q, a) in enumerate([("Hi", "Hello there."), ("2+2?", "4"), ("Name a long river.", "The Nile")])
    ]
    items, _ = tokenize(exs, Template(tokenizer), max_length=64)
    batches = bucket(items, batch_size=2)
    assert [[len(t.input_ids) for t in b] for b in batches] == [
        sorted(len(t.input_ids) for t in items)[:2],
        [max(len(t.input_ids) for t in items)],
    ]
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    trainer = AnswerLossTrainer(model=model, args=TrainingArguments(output_dir=str(tmp_path), report_to=[],
                                                                     use_cpu=True))  # fmt: skip
    padded = collate_padded(items, tokenizer.pad_token_id)
    for row, t in enumerate(items):  # each row: its tokens first, then padding, masked and not trained on
        n = len(t.input_ids)
        assert padded["input_ids"][row, :n].tolist() == t.input_ids and padded["attention_mask"][row, :n].all()
        pad = padded["input_ids"][row, n:]
        assert not padded["attention_mask"][row, n:].any() and (pad == tokenizer.pad_token_id).all()
    with torch.no_grad():
        torch.testing.assert_close(trainer.compute_loss(model, dict(padded)),
                                   trainer.compute_loss(model, dict(collate_packed([items]))))  # fmt: skip


def test_pack_fills_rows_first_fit_decreasing() -> None:
    items = [Tokenized(f"t:{i}", [1] * n, [1] * n) for i, n in enumerate([7, 5, 4, 3, 1])]
    rows = pack(items, tokens_per_row=10)
    assert [[t.id for t in row] for row in rows] == [["t:0", "t:3"], ["t:1", "t:2", "t:4"]]
    longer = Tokenized("t:long", [1] * 12, [1] * 12)  # longer than a row: a row of its own, nothing cut
    assert [t.id for t in pack([*items, longer], tokens_per_row=10)[0]] == ["t:long"]


def test_loss_on_kept_logits_equals_the_full_logits_loss(tiny_model: Path, tokenizer: Any) -> None:
    """The trainer's loss (logits only at answer positions) equals cross-entropy over full logits, and so do
    its gradients."""
    from transformers import AutoModelForCausalLM, TrainingArguments

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    items, _ = tokenize([_chat()], Template(tokenizer), max_length=256)
    batch = collate_packed([items])
    args = TrainingArguments(output_dir="/tmp/unused", report_to=[], use_cpu=True)
    trainer = AnswerLossTrainer(model=model, args=args)
    loss = trainer.compute_loss(model, dict(batch))
    loss.backward()
    ours = model.model.embed_tokens.weight.grad.clone()
    model.zero_grad()
    logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
    naive = F.cross_entropy(logits[0], batch["shift_labels"][0], ignore_index=IGNORE)
    naive.backward()
    torch.testing.assert_close(loss, naive)
    torch.testing.assert_close(ours, model.model.embed_tokens.weight.grad)


def _train_args(data: Path, out: Path, model: Path, *extra: str) -> list[str]:
    """A tiny-model run: mechanics only, so no learning-and-forgetting probes (the methods test has them)."""
    return ["train", str(data), "--model", str(model), "--out", str(out), "--eval-every", "4", *NO_PROBES,
            "--no-progress", *extra]  # fmt: skip


def _manifest(run: Path) -> dict[str, Any]:
    return json.loads((run / "manifest.json").read_text())


def test_sigkill_mid_run_resumes_to_the_same_result(sql_data: Path, tiny_model: Path, tmp_path: Path) -> None:
    """A real `python -m lmtailor train` killed with SIGKILL after a checkpoint; the rerun resumes from it and
    ends with the same adapter weights and the same losses as an uninterrupted run."""
    common = ["--method", "lora", "--max-steps", "8", "--save-every", "2", "--max-length", "128", "--tokens-per-batch",
              "128",
              "--learning-rate", "1e-2", "--export", "adapter"]  # fmt: skip
    clean = tmp_path / "clean"
    result = runner.invoke(app, _train_args(sql_data, clean, tiny_model, *common))
    assert result.exit_code == 0, result.output

    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "lmtailor", *_train_args(sql_data, run, tiny_model, *common)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300  # a safety net for a loaded machine, not a timing requirement
    while not (run / "checkpoints" / "checkpoint-4" / "trainer_state.json").exists():
        assert proc.poll() is None, proc.stderr.read().decode()  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "no checkpoint-4 in 300 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "manifest.json").exists()

    rerun = subprocess.run(cmd, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    manifest = _manifest(run)
    assert manifest["training"]["resumed_from"] in {"checkpoint-4", "checkpoint-6"}
    assert manifest["training"]["steps"] == 8
    weights = load_file(run / "adapter" / "adapter_model.safetensors")
    expected = load_file(clean / "adapter" / "adapter_model.safetensors")
    assert weights.keys() == expected.keys()
    for name in weights:
        torch.testing.assert_close(weights[name], expected[name], rtol=0, atol=0)
    losses = [(r["step"], r["loss"]) for r in map(json.loads, (run / "metrics.jsonl").open()) if "loss" in r]
    clean_losses = [(r["step"], r["loss"]) for r in map(json.loads, (clean / "metrics.jsonl").open()) if "loss" in r]
    assert losses == clean_losses and [s for s, _ in losses] == list(range(1, 9))
    assert manifest["before"] == _manifest(clean)["before"]


def test_a_run_killed_after_its_last_step_is_not_trained_further(
    sql_data: Path, tiny_model: Path, tmp_path: Path
) -> None:
    """Killed while evaluating after training (no manifest yet), the rerun keeps the last checkpoint's weights
    (Trainer.train, resumed from it, would step into the epoch that max_steps cuts short) and reports the peak
    memory of the process that trained."""
    run = tmp_path / "run"
    args = _train_args(sql_data, run, tiny_model, "--method", "lora", "--max-steps", "3", "--save-every", "3",
                       "--max-length", "128", "--tokens-per-batch", "128", "--export", "adapter")  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    assert _manifest(run)["data"]["micro_batches"] > 3  # so the third step ends mid-epoch
    trained = load_file(run / "adapter" / "adapter_model.safetensors")
    (run / "manifest.json").unlink()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    assert all(r["peak_memory_mb"] > 0 for r in rows if "loss" in r)
    for r in rows:  # as if the killed process had peaked higher than this one will: the manifest must say so
        r.update({"peak_memory_mb": 10**6} if "loss" in r else {})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    training = _manifest(run)["training"]
    assert training["resumed_from"] == "checkpoint-3" and training["steps"] == 3 and training["train_loss"] is None
    assert training["peak_memory_mb"] == 10**6
    assert max(r["step"] for r in map(json.loads, (run / "metrics.jsonl").open())) == 3
    for name, weight in load_file(run / "adapter" / "adapter_model.safetensors").items():
        torch.testing.assert_close(weight, trained[name], rtol=0, atol=0)


def test_two_gloo_processes_train_a_few_steps(sql_data: Path, tiny_model: Path, tmp_path: Path) -> None:
    """`accelerate launch` with the shipped DDP config, two CPU processes talking over gloo."""
    from importlib.resources import files

    ddp = files("lmtailor") / "recipes" / "accelerate" / "ddp.yaml"
    run = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(ddp), "--num_processes", "2",
           "-m", "lmtailor", *_train_args(sql_data, run, tiny_model, "--max-steps", "3", "--max-length", "128",
                                           "--tokens-per-batch", "128", "--export", "adapter")]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = _manifest(run)
    assert manifest["training"]["steps"] == 3 and manifest["training"]["world_size"] == 2
    assert manifest["before"]["eval_loss"] > 0 and manifest["after"]["eval_loss"] > 0  # evaluated by both ranks
    assert (run / "adapter" / "adapter_model.safetensors").exists()


def test_early_stopping_stops_when_validation_loss_stops_improving(
    sql_data: Path, tiny_model: Path, tmp_path: Path
) -> None:
    run = tmp_path / "early"
    args = _train_args(sql_data, run, tiny_model, "--method", "full", "--max-steps", "40", "--eval-every", "1",
                       "--early-stopping", "2", "--learning-rate", "5", "--max-length", "128",
                       "--tokens-per-batch", "128")  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = _manifest(run)
    rows = [r for r in map(json.loads, (run / "metrics.jsonl").open()) if "eval_loss" in r]
    # one evaluation before training (step 0) and one per step: the kept model's loss is not measured again
    untrained, evals = rows[0], [r["eval_loss"] for r in rows[1:]]
    assert untrained["step"] == 0 and untrained["eval_loss"] == manifest["before"]["eval_loss"]
    assert manifest["training"]["steps"] < 40 and len(evals) == manifest["training"]["steps"]
    best = min(evals)
    assert evals[-1] > best and evals[-2] > best  # two evaluations without improvement, then the stop
    assert manifest["training"]["best_checkpoint"].endswith(f"checkpoint-{evals.index(best) + 1}")
    assert manifest["after"]["eval_loss"] == pytest.approx(best)
    kept = load_file(Path(manifest["exports"]["merged"]) / "model.safetensors")  # the best weights are kept
    best_weights = load_file(Path(manifest["training"]["best_checkpoint"]) / "model.safetensors")
    assert kept.keys() <= best_weights.keys()
    for name, weight in kept.items():
        torch.testing.assert_close(weight, best_weights[name], rtol=0, atol=0)


def test_a_run_folder_of_another_config_is_refused(sql_data: Path, tiny_model: Path, tmp_path: Path) -> None:
    run = tmp_path / "taken"
    assert runner.invoke(app, _train_args(sql_data, run, tiny_model, "--max-steps", "1")).exit_code == 0
    result = runner.invoke(app, _train_args(sql_data, run, tiny_model, "--max-steps", "2"))
    assert result.exit_code == 2 and "different config" in result.output and "--restart" in result.output


def test_a_second_training_into_a_busy_folder_is_refused(sql_data: Path, tiny_model: Path, tmp_path: Path) -> None:
    from lmtailor.core import rundir

    run = tmp_path / "busy"
    with rundir.locked(run):  # as a training run in another process holds it
        result = runner.invoke(app, _train_args(sql_data, run, tiny_model, "--max-steps", "1"))
    assert result.exit_code == 2 and "another lmtailor run" in result.output
    assert not (run / "config.json").exists()


def test_a_damaged_config_in_the_run_folder_is_named(sql_data: Path, tiny_model: Path, tmp_path: Path) -> None:
    run = tmp_path / "damaged"
    run.mkdir()
    (run / "config.json").write_text('{"method": "lo')  # as a disk that filled while it was written
    result = runner.invoke(app, _train_args(sql_data, run, tiny_model, "--max-steps", "1"))
    assert result.exit_code == 2, result.output
    assert f"{run / 'config.json'} is damaged; pass --restart" in " ".join(result.output.split())


def test_options_are_checked_before_torch_loads(sql_data: Path, tmp_path: Path) -> None:
    """A mistyped option is refused at once: checking it needs neither torch nor transformers (seconds to load)."""
    args = ["train", str(sql_data), "--max-steps", "0", "--out", str(tmp_path / "run")]
    code = (
        "import sys; from typer.testing import CliRunner; from lmtailor.cli import app; "
        f"r = CliRunner().invoke(app, {args!r}); print(r.exit_code, 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["2", "False"], done.stdout + done.stderr


def test_clear_errors(sql_data: Path, tmp_path: Path) -> None:
    """Each refusal names what is wrong, before any model is loaded where it can."""
    cases = [
        (["--model", str(tmp_path)], "not a Hugging Face model folder"),
        (["--method", "qlora"], "QLoRA needs a CUDA GPU"),
        (["--method", "full", "--export", "adapter"], "no adapter to export"),
        (["--method", "full", "--export", "gguf", "--model", str(tmp_path)], "only model embedded has"),
        (["--method", "dora", "--export", "gguf"], "cannot apply DoRA"),
        (["--eval", str(tmp_path / "missing.jsonl")], "missing.jsonl"),
    ]
    for i, (extra, message) in enumerate(cases):
        args = ["train", str(sql_data), "--out", str(tmp_path / f"run{i}"), *extra]
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)


def test_the_probes_data_folder_is_named_when_missing(sql_data: Path, tmp_path: Path) -> None:
    """The library reads no folder it was not given; the CLI names the one it looks in and refuses it at once."""
    config = tmp_path / "train.yaml"
    config.write_text(
        f"train: [{{path: {sql_data}}}]\nevaluate: {{forgetting: {{data_root: {tmp_path / 'nowhere'}}}}}\n"
    )
    result = runner.invoke(app, ["train", "--config", str(config), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and f"from {tmp_path / 'nowhere'}" in result.output, result.output
    assert "which is not a folder" in result.output and not (tmp_path / "run").exists()
    # No probe, no folder needed: the run goes on, to the model it cannot find here.
    off = ["--general-texts", "0", "--mmlu", "0", "--model", str(tmp_path)]
    result = runner.invoke(app, ["train", "--config", str(config), "--out", str(tmp_path / "run"), *off])
    assert "not a Hugging Face model folder" in result.output and "not a folder:" not in result.output


@pytest.mark.parametrize("method", ["lora", "dora", "full"])
def test_methods_train_the_embedded_model_and_report_learning_and_forgetting(
    method: str, sql_data: Path, tmp_path: Path
) -> None:
    run = tmp_path / method
    args = ["train", str(sql_data), "--method", method, "--out", str(run), "--max-steps", "2", "--eval-every",
            "2", "--tokens-per-batch", "512", *QUICK_EVAL, "--no-progress"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Learning and forgetting" in result.output and "MMLU accuracy" in result.output
    m = _manifest(run)
    t = m["training"]
    assert t["steps"] == 2 and t["tokens_per_s"] > 0 and t["peak_memory_mb"] > 0
    assert t["training_seconds"] < t["seconds_this_process"]  # the held-out loss at step 2 is not training
    assert t["tokens_per_s"] == pytest.approx(t["tokens_seen"] / t["training_seconds"], rel=0.05)  # figures rounded
    for when in ("before", "after"):
        assert {"task", "general_ce", "mmlu_accuracy"} <= m[when].keys()
    assert {"task", "eval_loss", "general_ce", "mmlu_accuracy"} <= m["changes"].keys()
    assert m["changes"]["eval_loss"]["before"] > 0 and m["changes"]["eval_loss"]["after"] > 0
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    exports = {"lora": {"adapter", "gguf"}, "dora": {"adapter", "merged"}, "full": {"merged"}}[method]
    assert set(m["exports"]) == exports
    for path in m["exports"].values():
        assert Path(path).exists()
