import json
import re

import torch
import torch.nn.functional as F

from conftest import run_module
from infoflow.training import models
from infoflow.training.sft_data import IGNORE_INDEX, PadCollator, encode


def test_labels_cover_answer_and_eos_only(tiny_world):
    tokenizer = tiny_world["tokenizer"]
    row = tiny_world["knowledge"]["train"][0]
    features = encode(tokenizer, row["prompt"], row["answer"])
    n_prompt = len(tokenizer(row["prompt"]).input_ids)
    assert features["labels"][:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert features["labels"][n_prompt:] == features["input_ids"][n_prompt:]
    assert tokenizer.decode(features["input_ids"][n_prompt:]) == f"{row['answer']} <eos>"


def test_model_loss_is_cross_entropy_over_answer_tokens_only(tiny_world, tiny_model_dir):
    model, tokenizer = models.load(tiny_model_dir)
    rows = tiny_world["knowledge"]["train"][:3]
    batch = PadCollator(tokenizer.pad_token_id)([encode(tokenizer, r["prompt"], r["answer"]) for r in rows])
    assert (batch["labels"] == IGNORE_INDEX).sum() > 0 and (batch["attention_mask"] == 0).sum() > 0
    with torch.no_grad():
        out = model(**batch)
    logits, labels = out.logits[:, :-1], batch["labels"][:, 1:]
    keep = labels != IGNORE_INDEX
    expected = F.cross_entropy(logits[keep], labels[keep])
    assert torch.allclose(out.loss, expected, atol=1e-6)
    # Changing a prompt-only label would not change it; the answer count is what the loss averages.
    assert keep.sum() == sum(2 for _ in rows)  # one answer token and EOS per example


def test_finetune_command_trains_and_saves_a_loadable_model(tiny_world, tiny_model_dir, tmp_path):
    out, history = tmp_path / "model", tmp_path / "history.json"
    args = ["--model", tiny_model_dir, "--train", tiny_world["paths"]["k_train"], "--method", "sft",
            "--learning-rate", 1e-3, "--epochs", 2, "--batch-size", 4, "--warmup-steps", 0,
            "--weight-decay", 0.0, "--seed", 0, "--threads", 1, "--out", out, "--history", history]
    run_module("posttrain.finetune", *args)
    losses = [entry["loss"] for entry in json.loads(history.read_text())]
    assert losses and all(l > 0 for l in losses)
    tuned, _ = models.load(out)
    base, _ = models.load(tiny_model_dir)
    changed = [not torch.equal(a, b) for a, b in zip(tuned.state_dict().values(), base.state_dict().values())]
    assert any(changed)
    assert not list(out.glob(".partial-*"))
    assert json.loads((out / models.METHOD_FILE).read_text()) == {"method": "sft"}
    # Same seed, same data: the same weights.
    run_module("posttrain.finetune", *args[:-4], "--out", tmp_path / "again", "--history", tmp_path / "again.json")
    again, _ = models.load(tmp_path / "again")
    assert all(torch.equal(a, b) for a, b in zip(tuned.state_dict().values(), again.state_dict().values()))


def test_lora_method_trains_adapters_only_and_saves_merged_plain_models(tiny_world, tiny_model_dir, tmp_path):
    from safetensors import safe_open

    out, checkpoints = tmp_path / "model", tmp_path / "checkpoints"
    run_module("posttrain.finetune", "--model", tiny_model_dir, "--train", tiny_world["paths"]["k_train"], "--method", "lora",
               "--method-params", "r=4", "alpha=8", "dropout=0.0", "target_modules=q_proj,v_proj,down_proj",
               "--learning-rate", 1e-2, "--epochs", 1, "--batch-size", 4, "--warmup-steps", 0, "--weight-decay", 0.0,
               "--seed", 0, "--threads", 1, "--checkpoints", 1, "--checkpoint-dir", checkpoints,
               "--out", out, "--history", tmp_path / "history.json")
    base, _ = models.load(tiny_model_dir)
    base_weights = base.state_dict()
    for folder in (out, checkpoints / "point00", checkpoints / "point01"):
        with safe_open(folder / "model.safetensors", "pt") as f:
            assert not [k for k in f.keys() if "lora" in k]  # a plain model: adapters merged
    tuned = models.load(out)[0].state_dict()
    changed = {name for name in base_weights if not torch.equal(tuned[name], base_weights[name])}
    # Only the targeted projections move (q/v in attention, the FFN's memory matrix); the rest stays frozen.
    assert changed and all(name.endswith(("q_proj.weight", "v_proj.weight", "down_proj.weight")) for name in changed)
    start = models.load(checkpoints / "point00")[0].state_dict()
    assert all(torch.equal(start[name], base_weights[name]) for name in base_weights)  # B = 0 at step 0
    lora_record = {"method": "lora", "params": {"r": 4, "alpha": 8.0, "dropout": 0.0, "target_modules": "q_proj,v_proj,down_proj"}}
    assert all(models.read_method(folder) == lora_record for folder in (out, checkpoints / "point00", checkpoints / "point01"))


def test_unknown_lora_parameter_is_one_line(tiny_world, tiny_model_dir, tmp_path):
    result = run_module("posttrain.finetune", "--model", tiny_model_dir, "--train", tiny_world["paths"]["k_train"], "--method", "lora",
                        "--method-params", "rank=4", "--learning-rate", 1e-2, "--epochs", 1, "--batch-size", 4,
                        "--warmup-steps", 0, "--weight-decay", 0.0, "--seed", 0, "--threads", 1,
                        "--out", tmp_path / "m", "--history", tmp_path / "h.json", check=False)
    assert result.returncode != 0 and "error: unknown lora parameter 'rank'" in result.stderr.strip().splitlines()[-1]


def test_a_steered_model_and_its_checkpoints_record_the_steering_they_were_trained_with(tiny_world, tiny_model_dir, tmp_path):
    out, checkpoints = tmp_path / "model", tmp_path / "checkpoints"
    common = ["--model", tiny_model_dir, "--train", tiny_world["paths"]["k_train"], "--learning-rate", 1e-3, "--epochs", 1,
              "--batch-size", 4, "--warmup-steps", 0, "--weight-decay", 0.0, "--seed", 0, "--threads", 1,
              "--history", tmp_path / "history.json"]
    run_module("posttrain.finetune", *common, "--method", "intervention", "--method-params", "p=0.2", "alpha=3.0", "layers=0,1",
               "--at-eval", "--checkpoints", 1, "--checkpoint-dir", checkpoints, "--out", out)
    record = {"method": "intervention", "params": {"p": 0.2, "alpha": 3.0, "layers": [0, 1]}, "at_eval": True}
    for folder in (out, checkpoints / "point00", checkpoints / "point01"):
        assert json.loads((folder / models.METHOD_FILE).read_text()) == record
    result = run_module("posttrain.finetune", *common, "--method", "regularization", "--at-eval", "--out", tmp_path / "m", check=False)
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].endswith(
        "error: --at-eval: only an intervention (or a variant of it) changes decoding, not regularization")
    assert not (tmp_path / "m").exists()


def test_gradient_checkpointing_and_accumulation_with_the_regulariser(tiny_world, tiny_model_dir, tmp_path):
    history = tmp_path / "history.json"
    run_module("posttrain.finetune", "--model", tiny_model_dir, "--train", tiny_world["paths"]["k_train"], "--method", "regularization",
               "--method-params", "lam=0.1", "--learning-rate", 1e-3, "--epochs", 1, "--batch-size", 2,
               "--gradient-accumulation-steps", 2, "--gradient-checkpointing", "--warmup-steps", 0, "--weight-decay", 0.0,
               "--seed", 0, "--threads", 1, "--dtype", "float32", "--out", tmp_path / "model", "--history", history)
    logged = json.loads(history.read_text())
    assert logged and all(entry["key_entropy"] > 0 for entry in logged)


# e.g. 'infoflow.training.trainer: step 40/300 (13%)  loss 2.314  lr 4.1e-04  3.2 steps/s  ETA 1m21s  key entropy 3.210'
STEP_LINE = re.compile(r"infoflow\.training\.trainer: step (\d+)/(\d+) \(\d+%\)  loss (\d+\.\d{3})  lr \d\.\de[-+]\d\d"
                       r"  \d+\.\d steps/s  ETA \d+(s|m\d\ds|h\d\dm)  key entropy \d+\.\d{3}$")


def test_training_logs_a_line_per_logging_window_to_the_job_log(tiny_world, tiny_model_dir, tmp_path):
    history = tmp_path / "history.json"
    result = run_module("posttrain.finetune", "--model", tiny_model_dir, "--train", tiny_world["paths"]["k_train"],
                        "--method", "regularization", "--method-params", "lam=0.1", "--learning-rate", 1e-3, "--epochs", 2,
                        "--batch-size", 2, "--warmup-steps", 0, "--weight-decay", 0.0, "--seed", 0, "--threads", 1,
                        "--report-to", "none", "--out", tmp_path / "model", "--history", history)
    lines = [m for m in map(STEP_LINE.search, result.stderr.splitlines()) if m]
    logged = json.loads(history.read_text())
    assert len(logged) >= 2 and [int(m[1]) for m in lines] == [entry["step"] for entry in logged]
    assert [float(m[3]) for m in lines] == [round(entry["loss"], 3) for entry in logged]
    assert {int(m[2]) for m in lines} == {2 * -(-len(tiny_world["knowledge"]["train"]) // 2)}
    assert "'loss'" not in result.stdout  # the Trainer's own printed dicts are gone


def test_max_length_cuts_the_start_of_the_prompt_and_keeps_the_answer(tiny_world):
    tokenizer = tiny_world["tokenizer"]
    row = tiny_world["knowledge"]["train"][0]
    full = encode(tokenizer, row["prompt"], row["answer"])
    cut = encode(tokenizer, row["prompt"], row["answer"], max_length=4)
    assert cut["input_ids"] == full["input_ids"][-4:] and cut["labels"] == full["labels"][-4:]
    assert tokenizer.decode([t for t in cut["labels"] if t != IGNORE_INDEX]) == f"{row['answer']} <eos>"
