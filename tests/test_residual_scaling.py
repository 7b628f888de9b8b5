import argparse
import json
import sys

import pandas as pd
import pytest
import torch

from conftest import run_module
from infoflow import cli
from infoflow.inforidge import residual_scaling
from infoflow.training import models
from infoflow.training.sft_data import PadCollator, encode
from infoflow.inforidge.residual_scaling import answer_accuracy, attach, detach, fit
from test_steer import tiny


@pytest.mark.parametrize("architecture", ["llama", "gpt2"])
def test_betas_at_one_reproduce_the_logits_exactly(architecture):
    model = tiny(architecture, layers=3)
    ids = torch.randint(0, 40, (2, 7))
    with torch.no_grad():
        before = model(ids).logits
        scaling = attach(model)
        assert torch.equal(scaling.betas(), torch.ones(3))
        assert torch.equal(model(ids).logits, before)
        scaling.raw[1] = 0.0  # beta = log 2: the hooks do act
        assert not torch.allclose(model(ids).logits, before)
        detach(model)
        assert torch.equal(model(ids).logits, before)
    assert not hasattr(model, "residual_scaling")


@pytest.mark.parametrize("architecture", ["llama", "gpt2"])
def test_beta_zero_makes_its_block_the_identity(architecture):
    model = tiny(architecture, layers=3)
    ids = torch.randint(0, 40, (2, 7))
    model(ids[:, :2], output_hidden_states=True)  # Hugging Face's capturing hooks come first: ours must still run first
    scaling = attach(model)
    with torch.no_grad():
        states = model(ids, output_hidden_states=True).hidden_states  # [embeddings, block 1, block 2, final norm]
        assert not torch.allclose(states[2], states[1], atol=1e-3)
        scaling.raw[1] = -float("inf")  # beta_2 = softplus(-inf) = 0
        states = model(ids, output_hidden_states=True).hidden_states
    assert scaling.betas()[1] == 0
    assert torch.allclose(states[2], states[1], rtol=1e-6, atol=1e-6)


def test_only_the_betas_are_trained(tiny_world, tiny_model_dir):
    model, tokenizer = models.load(tiny_model_dir)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    rows = tiny_world["knowledge"]["train"][:12]
    scaling = attach(model)
    batch = PadCollator(tokenizer.pad_token_id)([encode(tokenizer, r["prompt"], r["answer"]) for r in rows[:4]])
    model(**batch).loss.backward()
    assert [name for name, p in model.named_parameters() if p.grad is not None] == ["residual_scaling.raw"]
    assert (scaling.raw.grad != 0).all()
    detach(model)

    args = argparse.Namespace(batch_size=4, learning_rate=0.1, epochs=2, warmup_steps=0, weight_decay=0.0, seed=0,
                              gradient_accumulation_steps=1, gradient_checkpointing=False)
    betas = fit(model, tokenizer, rows, args)
    assert betas == model.residual_scaling.betas().tolist()
    assert all(b >= 0 for b in betas) and max(abs(b - 1) for b in betas) > 0.01
    detach(model)
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())


def test_answer_accuracy_is_the_plain_argmax_after_the_prompt(tiny_world, tiny_model_dir):
    model, tokenizer = models.load(tiny_model_dir)
    examples = [dict(e) for e in tiny_world["knowledge"]["test_id"][:10]]
    assert len({len(tokenizer(e["prompt"]).input_ids) for e in examples}) > 1  # padding matters
    hits = []
    with torch.no_grad():
        for i, e in enumerate(examples):
            predicted = int(model(**tokenizer(e["prompt"], return_tensors="pt")).logits[0, -1].argmax())
            if i % 2 == 0:  # half the answers are the model's own prediction, so some examples are hits
                e["answer"] = tokenizer.decode([predicted])
            hits.append(tokenizer(" " + e["answer"], add_special_tokens=False).input_ids[0] == predicted)
    expected = sum(hits) / len(hits)
    assert 0 < expected < 1
    assert answer_accuracy(model, tokenizer, examples, batch_size=3) == expected


def test_command_writes_betas_and_accuracies(tiny_world, tiny_model_dir, tmp_path):
    paths = tiny_world["paths"]
    out, summary = tmp_path / "betas.csv", tmp_path / "summary.json"
    run_module("inforidge.residual_scaling", "--model", tiny_model_dir, "--id", paths["m_test_id"], "--ood", paths["m_test_ood"],
               "--seeds", 2, "--fit-fraction", 0.5, "--batch-size", 4, "--learning-rate", 0.05, "--epochs", 1,
               "--threads", 1, "--tags", "task=modular", "method=sft", "seed=3", "--out", out, "--summary", summary)
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["seed", "fit_split", "layer", "beta", "task", "method", "run_seed"]
    assert len(frame) == 2 * 2 * 2  # seeds x fit splits x layers
    assert frame.groupby(["seed", "fit_split"]).layer.apply(list).map([1, 2].__eq__).all()
    assert (frame.beta >= 0).all() and (frame.run_seed == 3).all()
    result = json.loads(summary.read_text())
    assert result["tags"] == {"task": "modular", "method": "sft", "seed": "3"}
    assert [(f["seed"], f["fit_split"]) for f in result["fits"]] == [(0, "id"), (0, "ood"), (1, "id"), (1, "ood")]
    for entry in result["fits"]:
        assert entry["n_fit"] == 4 and entry["n_heldout"] == {"id": 4, "ood": 4}
        for key in ("accuracy_before", "accuracy_after"):
            assert set(entry[key]) == {"id", "ood"} and all(0 <= a <= 1 for a in entry[key].values())


def test_command_reports_a_bad_file_in_one_line(tiny_model_dir, tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a"}\n')
    argv = ["--model", tiny_model_dir, "--id", bad, "--ood", bad, "--seeds", 1, "--fit-fraction", 0.5,
            "--batch-size", 4, "--learning-rate", 0.05, "--epochs", 1, "--threads", torch.get_num_threads(),
            "--out", tmp_path / "b.csv", "--summary", tmp_path / "s.json"]
    monkeypatch.setattr(sys, "argv", ["residual_scaling", *map(str, argv)])
    with pytest.raises(SystemExit) as exit:
        cli.run(residual_scaling.main)  # in process: the file is read before any model is loaded
    assert exit.value.code == 1
    assert capsys.readouterr().err == f"infoflow: {bad}, row 1: missing field 'split'\n"
