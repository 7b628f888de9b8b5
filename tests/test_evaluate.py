import json

import polars as pl
import pytest
import torch

from conftest import run_module
from infoflow.infosteer.steer import steer
from infoflow.training import models
from infoflow.posttrain.evaluate import score
from infoflow.world.scoring import exact_match
from infoflow.training.generation import greedy_generate


@pytest.mark.parametrize(
    "prediction, answer, expected",
    [
        ("Paris", "Paris", True),
        (" paris . Paris was", "Paris", True),
        ("Paris\nmore", "Paris", True),
        ("Parisian", "Paris", False),
        ("Paris Rome", "Paris", False),
        ("", "Paris", False),
        ("S5", "S5", True),
        ("S5 N3", "S5", False),
    ],
)
def test_exact_match(prediction, answer, expected):
    assert exact_match(prediction, answer) is expected


def test_score_counts_per_group():
    examples = [{"id": str(i), "answer": "a", "attribute": g} for i, g in enumerate(["x", "x", "y", "y"])]
    frame, metrics = score(examples, ["a", "b", "a", "a"], "attribute")
    assert metrics == {"n": 4, "accuracy": 0.75, "format_rate": 0.75, "by_group": {"x": {"n": 2, "accuracy": 0.5, "format_rate": 0.5},
                                                                                  "y": {"n": 2, "accuracy": 1.0, "format_rate": 1.0}}}
    assert frame["correct"].to_list() == [True, False, True, True]


def test_batched_left_padded_generation_equals_one_by_one(tiny_world, tiny_model_dir):
    model, tokenizer = models.load(tiny_model_dir)
    prompts = [r["prompt"] for r in tiny_world["knowledge"]["test_ood"][:4] + tiny_world["modular"]["test_id"][:3]]
    batched = greedy_generate(model, tokenizer, prompts, max_new_tokens=3, batch_size=7)
    single = [greedy_generate(model, tokenizer, [p], max_new_tokens=3, batch_size=1)[0] for p in prompts]
    assert batched == single


def test_evaluate_command_writes_predictions_and_tagged_metrics(tiny_world, tiny_model_dir, tmp_path):
    predictions, metrics = tmp_path / "p.csv", tmp_path / "m.json"
    run_module("posttrain.evaluate", "--model", tiny_model_dir, "--examples", tiny_world["paths"]["k_test_id"],
               "--max-new-tokens", 2, "--batch-size", 8, "--tags", "task=knowledge", "--splits", "test_id",
               "--threads", 1, "--predictions", predictions, "--metrics", metrics)
    result = json.loads(metrics.read_text())
    assert result["tags"] == {"task": "knowledge", "split": "test_id"}
    assert result["n"] == len(tiny_world["knowledge"]["test_id"]) and 0 <= result["accuracy"] <= 1
    assert len(predictions.read_text().splitlines()) == result["n"] + 1


def evaluate_predictions(model_dir, tiny_world, tmp_path):
    """The evaluate command's predictions on both knowledge test splits, per split."""
    paths = {s: (tmp_path / f"{s}.csv", tmp_path / f"{s}.json") for s in ("test_id", "test_ood")}
    run_module("posttrain.evaluate", "--model", model_dir, "--examples", tiny_world["paths"]["k_test_id"],
               tiny_world["paths"]["k_test_ood"], "--splits", "test_id", "test_ood", "--max-new-tokens", 3,
               "--batch-size", 8, "--threads", 1,
               "--predictions", *(p[0] for p in paths.values()), "--metrics", *(p[1] for p in paths.values()))
    for split, (_, metrics) in paths.items():
        assert json.loads(metrics.read_text())["tags"] == {"split": split}
    return {split: pl.read_csv(csv)["prediction"].fill_null("").to_list() for split, (csv, _) in paths.items()}


def test_a_model_trained_with_at_eval_is_evaluated_under_its_steering(tiny_world, tiny_model_dir, tmp_path):
    params = {"p": 0.25, "alpha": 3.0}
    model, tokenizer = models.load(tiny_model_dir)
    with torch.no_grad():  # FFNs that matter, as trained ones do: the random tiny model only echoes its last token
        for layer in model.model.layers:
            for linear in (layer.mlp.gate_proj, layer.mlp.up_proj, layer.mlp.down_proj):
                linear.weight.mul_(8)
    models.save(model, tokenizer, tmp_path / "steered", {"method": "intervention", "params": params, "at_eval": True})
    models.save(model, tokenizer, tmp_path / "plain")
    prompts = {s: [e["prompt"] for e in tiny_world["knowledge"][s]] for s in ("test_id", "test_ood")}
    plain = {s: greedy_generate(model, tokenizer, p, max_new_tokens=3, batch_size=8) for s, p in prompts.items()}
    with steer(model, "intervention", **params):  # what the rule passed before the model kept its steering
        steered = {s: greedy_generate(model, tokenizer, p, max_new_tokens=3, batch_size=8) for s, p in prompts.items()}
    assert steered != plain
    assert evaluate_predictions(tmp_path / "steered", tiny_world, tmp_path / "a") == steered
    # A folder without the record (a base model; a hub model has none either) decodes plainly.
    assert evaluate_predictions(tmp_path / "plain", tiny_world, tmp_path / "b") == plain


def test_bad_example_file_stops_with_file_and_row(tiny_model_dir, tmp_path):
    examples = tmp_path / "bad.jsonl"
    examples.write_text('{"id": "a", "split": "t", "prompt": "p", "answer": "x"}\n{"id": "b", "split": "t", "prompt": "p"}\n')
    result = run_module("posttrain.evaluate", "--model", tiny_model_dir, "--examples", examples, "--splits", "t", "--max-new-tokens", 2,
                        "--batch-size", 8, "--threads", 1, "--predictions", tmp_path / "p.csv",
                        "--metrics", tmp_path / "m.json", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"infoflow: {examples}, row 2: missing field 'answer'"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]


def test_public_data_set_examples_are_read_from_parquet_and_scored_by_answer_type(tmp_path):
    from infoflow.world import public_data
    from infoflow.io import read_examples

    rows = [
        {"id": "gsm8k-test-00000", "split": "test", "source": "gsm8k", "prompt": "How many? The correct answer is",
         "answer": "1234", "answer_type": "number", "choices": None},
        {"id": "piqa-test-00000", "split": "test", "source": "piqa", "prompt": "Which? The correct answer is",
         "answer": "solution2", "answer_type": "choice", "choices": ["solution1", "solution2"]},
    ]
    public_data.write(rows, tmp_path / "test.parquet")
    examples = read_examples(tmp_path / "test.parquet")
    assert examples == rows
    frame, metrics = score(examples, [" 1,234. Next question", " solution1 is wrong"], "source")
    assert frame["correct"].to_list() == [True, False]
    assert metrics["by_group"] == {"gsm8k": {"n": 1, "accuracy": 1.0, "format_rate": 1.0},
                                   "piqa": {"n": 1, "accuracy": 0.0, "format_rate": 1.0}}
