"""Few-shot prompting of the evaluation (--demonstrations) and the format rate of its metrics."""

import json
import re
from types import SimpleNamespace

import polars as pl
import pytest

from conftest import run_module
from infoflow.io import DataError
from infoflow.posttrain.evaluate import cut_at, demonstration_separator, draw_demonstrations, few_shot_prompt, item_opening, score
from infoflow.training import models
from infoflow.training.generation import greedy_generate
from infoflow.world.scoring import answer_sets, is_in_format


class CharacterTokenizer:
    """One id per character, so newlines survive, as in hub tokenizers."""

    eos_token = "</s>"

    def __call__(self, text, add_special_tokens=True):
        return SimpleNamespace(input_ids=[ord(c) for c in text])

    def decode(self, ids):
        return "".join(map(chr, ids))


def evaluate(model_dir, paths, out, *options, check=True):
    """The evaluate command on the knowledge world's ID split; (the process, predictions CSV, metrics JSON)."""
    predictions, metrics = out / "test_id.csv", out / "test_id.json"
    result = run_module("posttrain.evaluate", "--model", model_dir, "--examples", paths["k_test_id"], "--splits", "test_id",
                        "--max-new-tokens", 2, "--batch-size", 8, "--threads", 1, *options,
                        "--predictions", predictions, "--metrics", metrics, check=check)
    return result, predictions, metrics


def predicted(predictions_csv):
    return pl.read_csv(predictions_csv)["prediction"].fill_null("").to_list()


def test_demonstrations_end_with_the_eos_token_where_the_tokenizer_drops_newlines(tiny_world):
    tokenizer = tiny_world["tokenizer"]
    assert "\n" not in tokenizer.decode(tokenizer("a\nb").input_ids)  # word-level: whitespace splits words only
    assert demonstration_separator(tokenizer) == tokenizer.eos_token == "<eos>"
    assert demonstration_separator(CharacterTokenizer()) == "\n"


def test_the_prompt_with_two_demonstrations_is_as_documented(tiny_world):
    first, second, test = tiny_world["knowledge"]["train"][:2] + tiny_world["knowledge"]["test_id"][:1]
    prompt = few_shot_prompt([first, second], test["prompt"], "<eos>")
    assert prompt == f"{first['prompt']} {first['answer']}<eos>{second['prompt']} {second['answer']}<eos>{test['prompt']}"
    tokenizer = tiny_world["tokenizer"]
    words = tokenizer.convert_ids_to_tokens(tokenizer(prompt).input_ids)
    assert words == [*first["prompt"].split(), first["answer"], "<eos>", *second["prompt"].split(), second["answer"], "<eos>",
                     *test["prompt"].split()]
    assert few_shot_prompt([], test["prompt"], "<eos>") == test["prompt"]


def test_demonstrations_are_a_seeded_draw_from_training_that_leaves_out_test_prompts():
    training = [{"id": f"t{i}", "prompt": f"q{i}", "answer": "a"} for i in range(10)]
    test_prompts = {"q3", "q7"}
    for seed in range(20):
        drawn = draw_demonstrations(training, 8, seed, test_prompts, "train.jsonl")
        assert len({d["id"] for d in drawn}) == 8 and not {d["prompt"] for d in drawn} & test_prompts
        assert draw_demonstrations(training, 2, seed, test_prompts, "train.jsonl") == drawn[:2]  # nested in K
    assert draw_demonstrations(training, 3, 0, test_prompts, "train.jsonl") != draw_demonstrations(training, 3, 1, test_prompts, "train.jsonl")
    with pytest.raises(DataError, match=r"^train.jsonl: 8 examples that are not test items, fewer than --demonstrations 9$"):
        draw_demonstrations(training, 9, 0, test_prompts, "train.jsonl")


@pytest.mark.parametrize(
    "prediction, row, in_format",
    [
        (" Paris . more", {"answer": "Rome", "attribute": "city"}, True),  # wrong, yet a city
        ("1905", {"answer": "Rome", "attribute": "city"}, False),  # a year, not a city
        ("Paris Q : where", {"answer": "Paris", "attribute": "city"}, False),  # the answer does not end
        ("", {"answer": "Rome", "attribute": "city"}, False),
        ("blue", {"answer": "red", "answer_type": "exact", "source": "colours"}, True),
        ("The answer is solution1.", {"answer": "solution2", "answer_type": "choice", "choices": ["solution1", "solution2"]}, True),
        ("neither", {"answer": "solution2", "answer_type": "choice", "choices": ["solution1", "solution2"]}, False),
        ("about 1,234 apples", {"answer": "7", "answer_type": "number"}, True),
        ("many apples", {"answer": "7", "answer_type": "number"}, False),
        ("yes", {"answer": "false", "answer_type": "yes_no"}, True),
        ("maybe", {"answer": "false", "answer_type": "yes_no"}, False),
    ],
)
def test_format_is_an_answer_of_the_right_kind_right_or_wrong(prediction, row, in_format):
    exact_answers = {"paris", "rome", "red", "blue"}
    assert is_in_format(prediction, row, exact_answers) is in_format


def test_format_rate_per_group_takes_exact_answers_from_training_and_the_test_split():
    training = [{"answer": "Paris", "attribute": "city"}, {"answer": "1905", "attribute": "year"}]
    examples = [{"id": str(i), "answer": a, "attribute": g} for i, (a, g) in enumerate([("Rome", "city"), ("Rome", "city"),
                                                                                        ("1910", "year"), ("1910", "year")])]
    assert answer_sets(training, ["city", "year"]) == {"city": {"paris"}, "year": {"1905"}}
    predictions = ["Paris", "1905", "1910", "Rome"]  # wrong city, a year for a city, right year, a city for a year
    _, metrics = score(examples, predictions, "attribute", training)
    assert (metrics["accuracy"], metrics["format_rate"]) == (0.25, 0.5)
    assert metrics["by_group"] == {"city": {"n": 2, "accuracy": 0.0, "format_rate": 0.5},
                                   "year": {"n": 2, "accuracy": 0.5, "format_rate": 0.5}}
    # Without a training file the test split's own answers make the format; a right answer is always in format.
    assert score(examples, ["Rome", "Paris", "1910", "1905"], "attribute")[1]["format_rate"] == 0.5


def test_an_answer_ends_where_the_next_item_would_begin():
    knowledge = [{"prompt": "Q : where was Ana Bel born ? A :"}, {"prompt": "Q : in which year was Ana Bel born ? A :"}]
    assert item_opening(knowledge) == "Q :"
    assert item_opening([{"prompt": "S0 N48 S7"}, {"prompt": "S2 N12 S4"}]) == ""  # the modular task's: no shared opening
    assert item_opening([{"prompt": "Q : a"}, {"prompt": "Q : a"}]) == "Q : a" and item_opening([]) == ""
    # A base model that learned QA documents asks the next question after its answer.
    cut = cut_at(["Budocorp Q : what", "1927", "Q : where"], "Q :")
    assert cut == ["Budocorp ", "1927", ""]
    assert cut_at(["S3 S4"], "") == ["S3 S4"]
    examples = [{"id": "a", "prompt": "Q : who employs X ? A :", "answer": "Budocorp", "attribute": "company"}]
    assert score(examples, cut[:1], "attribute")[1] == score(examples, ["Budocorp"], "attribute")[1]


def test_zero_demonstrations_prompt_as_before(tiny_world, tiny_model_dir, tmp_path):
    paths = tiny_world["paths"]
    _, plain, plain_metrics = evaluate(tiny_model_dir, paths, tmp_path / "plain")
    _, k0, k0_metrics = evaluate(tiny_model_dir, paths, tmp_path / "k0", "--demonstrations", 0,
                                 "--demonstration-examples", paths["k_train"], "--demonstration-seed", 3)
    # The same prompts; with the training file given, answers end at its prompts' opening.
    assert predicted(k0) == [p or "" for p in cut_at(predicted(plain), item_opening(tiny_world["knowledge"]["train"]))]
    model, tokenizer = models.load(tiny_model_dir)
    prompts = [e["prompt"] for e in tiny_world["knowledge"]["test_id"]]
    assert predicted(plain) == greedy_generate(model, tokenizer, prompts, 2, 8)
    assert json.loads(plain_metrics.read_text())["demonstrations"] == json.loads(k0_metrics.read_text())["demonstrations"] == 0


def test_the_command_prompts_with_demonstrations_from_the_training_file(tiny_world, tiny_model_dir, tmp_path):
    paths, knowledge = tiny_world["paths"], tiny_world["knowledge"]
    _, predictions, metrics = evaluate(tiny_model_dir, paths, tmp_path, "--demonstrations", 2,
                                       "--demonstration-examples", paths["k_train"], "--demonstration-seed", 1)
    demonstrations = draw_demonstrations(knowledge["train"], 2, 1, set(), "train")
    model, tokenizer = models.load(tiny_model_dir)
    prompts = [few_shot_prompt(demonstrations, e["prompt"], "<eos>") for e in knowledge["test_id"]]
    generated = cut_at(greedy_generate(model, tokenizer, prompts, 2, 8), "Q :")
    assert predicted(predictions) == generated
    result = json.loads(metrics.read_text())
    assert result["demonstrations"] == 2
    assert result["format_rate"] == score(knowledge["test_id"], generated, "attribute", knowledge["train"])[1]["format_rate"]
    assert set(result["by_group"]) == {"city", "year", "company", "field"}


@pytest.mark.parametrize(
    "options, error",
    [
        (["--demonstrations", 2], "error: --demonstrations needs --demonstration-examples \\(the training split\\)"),
        (["--demonstrations", 1, "--demonstration-examples", "{k_test_id}"],  # the test split itself: every prompt a test item
         "infoflow: {k_test_id}: 0 examples that are not test items, fewer than --demonstrations 1"),
        (["--demonstrations", 5, "--demonstration-examples", "{k_train}"],  # some 12 tokens each, the tiny model has 64 positions
         "infoflow: --demonstrations 5: prompts of up to \\d+ tokens and --max-new-tokens 2 exceed the model's 64 positions"),
    ],
)
def test_demonstrations_that_cannot_be_used_stop_with_one_line(options, error, tiny_world, tiny_model_dir, tmp_path):
    paths = {name: str(path) for name, path in tiny_world["paths"].items()}
    result, _, _ = evaluate(tiny_model_dir, paths, tmp_path, *(str(o).format(**paths) for o in options), check=False)
    assert result.returncode != 0
    assert re.search(error.format(**{name: re.escape(path) for name, path in paths.items()}) + "$",
                     result.stderr.strip().splitlines()[-1])
    assert sorted(p.name for p in tmp_path.iterdir()) == []
