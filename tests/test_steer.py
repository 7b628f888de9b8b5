import argparse
import importlib.util
import math

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from infoflow.cli import StageFailure
from infoflow.training import models, trainer
from infoflow.training.sft_data import PadCollator, encode
from infoflow.training.layers import memory_modules, resolve_layers
from infoflow.infosteer.steer import Steering, intervene, key_entropy, parse_spec, steer

ARCHITECTURES = {
    "llama": dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_key_value_heads=2),
    "qwen2": dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_key_value_heads=2),
    "gemma2": dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_key_value_heads=2, head_dim=16),
    "gpt2": dict(n_embd=32, n_head=2, n_positions=32, bos_token_id=0, eos_token_id=0),
}


def tiny(architecture, layers=6):
    depth = {"n_layer": layers} if architecture == "gpt2" else {"num_hidden_layers": layers}
    config = AutoConfig.for_model(architecture, vocab_size=40, **depth, **ARCHITECTURES[architecture])
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config).eval()


def test_intervention_on_a_hand_computed_key():
    keys = torch.tensor([[3.0, -1.0, 0.5, 2.0]])  # mean 1.125
    assert intervene(keys, 1, 1.0, "signed", False).tolist() == [[3.0, 1.125, 0.5, 2.0]]
    assert intervene(keys, 1, 1.0, "magnitude", False).tolist() == [[3.0, -1.0, 1.125, 2.0]]
    assert intervene(keys, 2, 2.0, "signed", False).tolist() == [[3.0, 2.25, 2.25, 2.0]]
    assert intervene(keys, 2, 2.0, "magnitude", False).tolist() == [[3.0, 2.25, 2.25, 2.0]]
    # Every token is steered on its own.
    batch = torch.tensor([[[1.0, 2.0, 3.0]], [[-6.0, 0.0, 3.0]]])
    assert intervene(batch, 1, 1.0, "signed", False).tolist() == [[[2.0, 2.0, 3.0]], [[-1.0, 0.0, 3.0]]]


def test_fill_gradient_is_detached_on_request():
    keys = torch.tensor([[3.0, -1.0, 0.5, 2.0]], requires_grad=True)
    intervene(keys, 1, 1.0, "signed", False).sum().backward()
    assert keys.grad.tolist() == [[1.25, 0.25, 1.25, 1.25]]  # three kept + the mean's 1/4 each
    keys.grad = None
    intervene(keys, 1, 1.0, "signed", True).sum().backward()
    assert keys.grad.tolist() == [[1.0, 0.0, 1.0, 1.0]]


def test_key_entropy_on_hand_computed_keys():
    h = -(2 * 0.25 * math.log(0.25) + 0.5 * math.log(0.5))
    assert key_entropy(torch.tensor([1.0, 1.0, 2.0]), "abs").item() == pytest.approx(h, abs=1e-6)
    # abs normalisation: a negative coefficient counts by its magnitude.
    assert key_entropy(torch.tensor([-1.0, 1.0, 2.0]), "abs").item() == pytest.approx(h, abs=1e-6)
    k = torch.tensor([0.0, math.log(2.0), math.log(5.0)])  # softmax = [1, 2, 5] / 8
    q = torch.tensor([1.0, 2.0, 5.0]) / 8
    assert key_entropy(k, "softmax").item() == pytest.approx(-(q * q.log()).sum().item(), abs=1e-6)
    assert key_entropy(torch.ones(64), "abs").item() == pytest.approx(math.log(64), abs=1e-5)


def test_abs_entropy_gradient_equals_autograd_of_the_plain_formula():
    keys = torch.randn(3, 5, 64, dtype=torch.float64)
    keys[0, 0, :4] = 0.0  # zeros and negative coefficients included
    keys.requires_grad_(True)
    weights = torch.randn(3, 5, dtype=torch.float64)
    (key_entropy(keys, "abs") * weights).sum().backward()
    ours = keys.grad.clone()
    keys.grad = None
    q = keys.abs() / (keys.abs().sum(-1, keepdim=True) + 1e-8)
    plain = -(q * torch.log(q + 1e-8)).sum(-1)
    (plain * weights).sum().backward()
    assert torch.allclose(key_entropy(keys, "abs").double(), plain, atol=1e-6)
    assert torch.allclose(ours.double(), keys.grad, atol=1e-5)


def test_masked_tokens_keep_their_keys():
    keys = torch.tensor([[[3.0, -1.0, 0.5, 2.0], [1.0, 2.0, 3.0, 6.0]]])
    mask = torch.tensor([[False, True]])
    assert intervene(keys, 1, 1.0, "signed", False, mask).tolist() == [[[3.0, -1.0, 0.5, 2.0], [3.0, 2.0, 3.0, 6.0]]]


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_hooks_fire_on_the_selected_layers_only(architecture):
    model = tiny(architecture)
    ids = torch.randint(0, 40, (2, 5))
    for method, layers, expected in [
        ("intervention", [0, 4], [1, 0, 0, 0, 1, 0]),
        ("regularization", "early+middle", [1, 1, 1, 1, 0, 0]),
        ("intervention", "late", [0, 0, 0, 0, 1, 1]),
    ]:
        with steer(model, method, layers=layers) as steering:
            model(ids)
        assert steering.calls == expected


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_key_reproduces_the_memory_matrix_output(architecture):
    """The hooked input k satisfies sum_i k_i v_i (+ bias) = module output: it is the key."""
    model = tiny(architecture, layers=2)
    seen = {}
    module = memory_modules(model)[1]
    handle = module.register_forward_hook(lambda m, args, out: seen.update(k=args[0], out=out))
    model(torch.randint(0, 40, (1, 4)))
    handle.remove()
    weight = module.weight if architecture == "gpt2" else module.weight.T  # rows are the memory vectors v_i
    bias = module.bias if module.bias is not None else 0
    assert torch.allclose(seen["k"] @ weight + bias, seen["out"], atol=1e-5)


def test_layer_groups_and_bad_layers():
    assert resolve_layers("all", 4) == [0, 1, 2, 3]
    assert resolve_layers("early+middle", 24) == list(range(16))
    assert resolve_layers("late", 24) == list(range(16, 24))
    assert resolve_layers("middle", 8) == [3, 4]
    with pytest.raises(ValueError, match="unknown layer group 'centre'"):
        resolve_layers("early+centre", 8)
    with pytest.raises(ValueError, match="outside 0..7"):
        resolve_layers([2, 8], 8)


def test_bad_parameters_are_named():
    model = tiny("llama", layers=2)
    for params, name in [({"p": 1.5}, "p:"), ({"alpha": 0}, "alpha:"), ({"selection": "largest"}, "selection:"),
                         ({"normalization": "l2"}, "normalization:"), ({"positions": "prompt"}, "positions:")]:
        with pytest.raises(ValueError, match=name):
            Steering(model, "intervention", **params)
    assert parse_spec(["p=0.02", "layers=0,3", "detach_fill=true", "selection=magnitude"]) == {
        "p": 0.02, "layers": [0, 3], "detach_fill": True, "selection": "magnitude"}
    with pytest.raises(ValueError, match="unknown steering parameter 'delta'"):
        parse_spec(["delta=1"])


def test_response_positions_are_those_that_predict_a_label():
    model = tiny("llama", layers=1)
    with steer(model, "intervention", positions="response") as steering:
        labels = torch.tensor([[-100, -100, -100, 7, 1], [-100, -100, 5, 1, -100]])
        attention = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]])
        steering.set_positions(attention, labels)
        assert steering.mask.tolist() == [[False, False, True, True, False], [False, True, True, False, False]]


def test_hooks_are_removed_and_a_saved_steered_model_is_plain(tiny_world, tmp_path):
    model = tiny("llama", layers=2)
    ids = torch.randint(0, 40, (1, 6))
    before = model(ids).logits
    with steer(model, "intervention", p=0.25, alpha=3.0):
        assert not torch.allclose(model(ids).logits, before)
    assert torch.equal(model(ids).logits, before)
    assert all(not m._forward_pre_hooks for m in memory_modules(model))
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert torch.equal(reloaded(ids).logits, before)


def train_args(**overrides):
    values = dict(batch_size=4, learning_rate=1e-3, epochs=1, warmup_steps=0, weight_decay=0.0, seed=0,
                  gradient_accumulation_steps=1, gradient_checkpointing=False)
    return argparse.Namespace(**{**values, **overrides})


def run_training(model_dir, rows, steering_params=None, **overrides):
    model, tokenizer = models.load(model_dir, precision="auto")  # as finetune loads a model to train
    data = [encode(tokenizer, r["prompt"], r["answer"]) for r in rows]
    collator = PadCollator(tokenizer.pad_token_id)
    if steering_params is None:
        history = trainer.train(model, data, train_args(**overrides), scheduler="linear", run_label="test", collator=collator,
                                 logging_steps=1)
    else:
        method, params = steering_params
        with steer(model, method, **params) as steering:
            history = trainer.train(model, data, train_args(**overrides), scheduler="linear", run_label="test",
                                     collator=collator, logging_steps=1, steering=steering)
    return [h["loss"] for h in history], model.state_dict()


def test_no_op_steering_matches_sft_exactly(tiny_world, tiny_model_dir):
    rows = tiny_world["knowledge"]["train"][:12]
    sft_losses, sft_weights = run_training(tiny_model_dir, rows)
    for params in [("intervention", {"p": 0.0}), ("regularization", {"lam": 0.0})]:
        losses, weights = run_training(tiny_model_dir, rows, params)
        assert losses == sft_losses
        assert all(torch.equal(sft_weights[k], weights[k]) for k in sft_weights)
    losses, _ = run_training(tiny_model_dir, rows, ("intervention", {"p": 0.2, "alpha": 3.0}))
    assert losses != sft_losses


def test_report_to_none_trains_as_before(tiny_world, tiny_model_dir):
    rows = tiny_world["knowledge"]["train"][:8]
    losses, weights = run_training(tiny_model_dir, rows)  # settings built in code, without report_to
    reported_losses, reported_weights = run_training(tiny_model_dir, rows, report_to="none")
    assert reported_losses == losses and all(torch.equal(weights[k], reported_weights[k]) for k in weights)


def test_a_tracker_that_cannot_be_reported_to_stops_training_first(tiny_world, tiny_model_dir, monkeypatch):
    rows, find_spec = tiny_world["knowledge"]["train"][:4], importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None if name == "wandb" else find_spec(name, *args))
    with pytest.raises(StageFailure, match=r"^training.report_to: wandb needs the 'wandb' package \(pip install wandb\)$"):
        run_training(tiny_model_dir, rows, report_to="wandb")
    # TensorBoard installed, but without a folder outliving the Trainer's for its event files.
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: object() if name == "tensorboard" else find_spec(name, *args))
    monkeypatch.delenv("TENSORBOARD_LOGGING_DIR", raising=False)
    with pytest.raises(StageFailure, match="^training.report_to: tensorboard needs TENSORBOARD_LOGGING_DIR"):
        run_training(tiny_model_dir, rows, report_to="tensorboard")


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard is not installed")
def test_tensorboard_gets_the_training_logs(tiny_world, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path))
    run_training(tiny_model_dir, tiny_world["knowledge"]["train"][:8], report_to="tensorboard")
    assert list(tmp_path.glob("events.out.tfevents.*"))


def test_regulariser_gradient_survives_gradient_checkpointing(tiny_world, tiny_model_dir):
    model, tokenizer = models.load(tiny_model_dir)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    rows = tiny_world["knowledge"]["train"][:4]
    batch = PadCollator(tokenizer.pad_token_id)([encode(tokenizer, r["prompt"], r["answer"]) for r in rows])
    with steer(model, "regularization", lam=1.0) as steering:
        steering.set_positions(batch["attention_mask"])
        model(**batch)
        steering.entropy().backward()
    grad = model.model.layers[0].mlp.gate_proj.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def regulariser_gradient(model_dir, batches, accumulation_steps, tmp_path):
    """Gradient after the Trainer's own loss path over `batches` (one accumulation window)."""
    from transformers import TrainingArguments

    model, _ = models.load(model_dir)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=len(batches[0]["input_ids"]),
                             gradient_accumulation_steps=accumulation_steps, report_to="none")
    with steer(model, "regularization", lam=0.5) as steering:
        steered = trainer.SteeredTrainer(model=model.train(), args=args, steering=steering, run_label="test")
        steered.current_gradient_accumulation_steps = accumulation_steps
        # As the training loop does: the window's batches, its label count and (the trainer's own) steered positions.
        batches, num_items = steered.get_batch_samples(iter(batches), accumulation_steps, "cpu")
        for batch in batches:
            steered.training_step(model, batch, num_items_in_batch=num_items)
    return model.model.layers[0].mlp.gate_proj.weight.grad.clone()


def test_regulariser_is_scaled_right_under_gradient_accumulation(tiny_world, tiny_model_dir, tmp_path):
    _, tokenizer = models.load(tiny_model_dir)
    rows = tiny_world["knowledge"]["train"][:4]
    collate = PadCollator(tokenizer.pad_token_id)
    features = [encode(tokenizer, r["prompt"], r["answer"]) for r in rows]
    # The halves hold different numbers of steered (real) positions, as two processes' shares may.
    lengths = [len(f["input_ids"]) for f in features]
    assert sum(lengths[:2]) != sum(lengths[2:])
    whole = regulariser_gradient(tiny_model_dir, [collate(features)], 1, tmp_path / "a")
    halves = regulariser_gradient(tiny_model_dir, [collate(features[:2]), collate(features[2:])], 2, tmp_path / "b")
    assert torch.allclose(whole, halves, atol=1e-6, rtol=1e-4)


def saved_with_method(model_dir, folder, method):
    """A copy of the model in `model_dir` saved to `folder` with the post-training `method` record."""
    model, tokenizer = models.load(model_dir)
    models.save(model, tokenizer, folder, method)
    return folder


def test_from_folder_puts_back_the_steering_of_an_at_eval_intervention(tiny_world, tiny_model_dir, tmp_path):
    from infoflow.infosteer.steer import from_folder

    params = {"p": 0.25, "alpha": 3.0, "layers": [1]}
    folder = saved_with_method(tiny_model_dir, tmp_path / "steered",
                               {"method": "intervention", "params": params, "at_eval": True})
    model, tokenizer = models.load(folder)
    ids = tokenizer([tiny_world["knowledge"]["test_id"][0]["prompt"]], return_tensors="pt").input_ids
    with torch.no_grad():
        plain = model(ids).logits
        with steer(model, "intervention", **params):
            steered = model(ids).logits
        with from_folder(model, folder) as steering:
            assert steering.method == "intervention" and steering.layers == [1]
            assert torch.equal(model(ids).logits, steered)
        assert not torch.allclose(steered, plain)
        assert torch.equal(model(ids).logits, plain)  # hooks removed on exit
        # Trained without at_eval, with a plain method, or a folder without the record: no hooks.
        for name, method in [("off", {"method": "intervention", "params": params, "at_eval": False}),
                             ("lora", {"method": "lora", "params": {"r": 4}}), ("sft", {"method": "sft"})]:
            with from_folder(model, saved_with_method(tiny_model_dir, tmp_path / name, method)) as steering:
                assert steering is None and torch.equal(model(ids).logits, plain)
        with from_folder(model, tiny_model_dir) as steering:
            assert steering is None and torch.equal(model(ids).logits, plain)
