"""Training precisions (infoflow.training.models.PRECISIONS) with the real Hugging Face Trainer on the CPU,
which has bf16 autocast (fp16 autocast with loss scaling needs a GPU)."""

import argparse
import contextlib

import pytest
import torch
from transformers import TrainerCallback

from infoflow.cli import StageFailure
from infoflow.infosteer.steer import steer
from infoflow.training import models, trainer
from infoflow.training.sft_data import PadCollator, encode

on_the_cpu = pytest.mark.skipif(torch.cuda.is_available(), reason="what the CPU does")


class RecordDtypes(TrainerCallback):
    """After the first step: the dtypes of the parameters and of AdamW's states, and of the output of
    the first layer's FFN output projection during the step (16-bit under autocast)."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.matmul = set()
        self.hook = model.model.layers[0].mlp.down_proj.register_forward_hook(
            lambda module, inputs, output: self.matmul.add(output.dtype))

    def on_step_end(self, args, state, control, model=None, optimizer=None, **kwargs):
        self.hook.remove()
        self.parameters = {p.dtype for p in model.parameters()}
        self.states = {s[name].dtype for s in optimizer.state.values() for name in ("exp_avg", "exp_avg_sq")}


def train_one_step(model_dir, rows, precision, learning_rate=1e-3, prepare=None, steering_params=None):
    """(model, logged losses, RecordDtypes) after one Trainer step on `rows` in `precision`;
    `prepare(model)` edits the loaded weights first."""
    model, tokenizer = models.load(model_dir, precision=precision)
    if prepare:
        prepare(model)
    data = [encode(tokenizer, r["prompt"], r["answer"]) for r in rows]
    args = argparse.Namespace(batch_size=len(data), learning_rate=learning_rate, epochs=1, warmup_steps=0,
                              weight_decay=0.0, seed=0, gradient_accumulation_steps=1, gradient_checkpointing=False,
                              precision=precision)
    record = RecordDtypes()
    with steer(model, steering_params[0], **steering_params[1]) if steering_params else contextlib.nullcontext() as steering:
        history = trainer.train(model, data, args, scheduler="linear", run_label="test", logging_steps=1,
                                collator=PadCollator(tokenizer.pad_token_id), callbacks=[record], steering=steering)
    return model, [h["loss"] for h in history], record


BF16, FP32 = torch.bfloat16, torch.float32


@pytest.mark.parametrize("precision, weights, matmul", [
    ("fp32", FP32, FP32), pytest.param("auto", FP32, FP32, marks=on_the_cpu), ("bf16-mixed", FP32, BF16),
    ("bf16-pure", BF16, BF16)])
def test_each_precision_trains_weights_and_adamw_states_in_its_dtype(tiny_world, tiny_model_dir, precision, weights, matmul):
    _, losses, record = train_one_step(tiny_model_dir, tiny_world["knowledge"]["train"][:4], precision)
    assert record.parameters == record.states == {weights} and record.matmul == {matmul}
    assert len(losses) == 1


def test_an_update_below_bf16_resolution_is_lost_in_bf16_pure_and_kept_in_bf16_mixed(tiny_world, tiny_model_dir):
    # Every weight at least 2^-10 in magnitude: half its bf16 spacing is at least 2^-18 (3.8e-6),
    # above AdamW's first update (at most the learning rate, 1e-6), which float32 resolves at every
    # weight below 8.
    def away_from_zero(model):
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.where(p.abs() < 2**-10, torch.full_like(p, 2**-10).copysign(p), p))

    rows = tiny_world["knowledge"]["train"][:4]
    for precision, changes in [("bf16-pure", False), ("bf16-mixed", True)]:
        before, _ = models.load(tiny_model_dir, precision=precision)
        away_from_zero(before)
        after, _, _ = train_one_step(tiny_model_dir, rows, precision, learning_rate=1e-6, prepare=away_from_zero)
        unchanged = [torch.equal(b, a) for b, a in zip(before.state_dict().values(), after.state_dict().values())]
        assert not any(unchanged) if changes else all(unchanged), precision


@pytest.mark.parametrize("steering_params", [("intervention", {"p": 0.5, "alpha": 5.0}), ("regularization", {"lam": 0.5})])
def test_steering_gives_the_same_loss_under_bf16_autocast_within_bf16_tolerance(tiny_world, tiny_model_dir, steering_params):
    rows = tiny_world["knowledge"]["train"][:4]
    runs = [("fp32", None), ("fp32", steering_params), ("bf16-mixed", steering_params)]
    (plain,), (fp32,), (bf16,) = (train_one_step(tiny_model_dir, rows, precision, steering_params=params)[1]
                                  for precision, params in runs)
    # Within bf16's tolerance, and far closer than the loss without steering (which it would be if
    # autocast bypassed the hooks).
    assert bf16 == pytest.approx(fp32, rel=2**-6) and abs(bf16 - fp32) < abs(fp32 - plain) / 4


@on_the_cpu
def test_fp16_mixed_on_the_cpu_fails_in_one_line_before_loading(tiny_model_dir):
    with pytest.raises(StageFailure, match=r"^--precision fp16-mixed needs a CUDA GPU \(no fp16 autocast on the CPU\)"):
        models.load(tiny_model_dir, precision="fp16-mixed")


def test_mixed_precision_refuses_16_bit_trained_weights(tiny_model_dir):
    model, _ = models.load(tiny_model_dir, dtype="bfloat16")  # 16-bit weights: mixed precision has no fp32 master copy
    args = argparse.Namespace(precision="bf16-mixed")
    message = r"^test: --precision bf16-mixed trains float32 parameters, the model's are bfloat16$"
    with pytest.raises(StageFailure, match=message):
        trainer.train(model, [], args, scheduler="linear", run_label="test")
