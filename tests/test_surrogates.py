import csv
import math

import polars as pl
import pytest
import torch

from conftest import run_module
from infoflow.infosteer import surrogates
from infoflow.report import surrogate_tables
from infoflow.training import models
from infoflow.training.layers import final_norm, memory_modules, memory_vectors


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return models.load(tiny_model_dir)[0]


def brute_force(model, layer, normed):
    """float64 entropy and probabilities of softmax(v_i W_decode), vector by vector."""
    head = model.get_output_embeddings().weight.detach().double()
    vectors = memory_vectors(memory_modules(model)[layer]).detach()
    rows = []
    for v in vectors:
        if normed:
            with torch.no_grad():
                v = final_norm(model)(v)
        rows.append(torch.softmax(v.double() @ head.T, -1))
    p = torch.stack(rows)
    return -(p * p.log()).sum(-1), p


def test_memory_vectors_reproduce_the_mlp_output(tiny):
    module = memory_modules(tiny)[0]
    keys = torch.randn(3, memory_vectors(module).shape[0])
    with torch.no_grad():
        assert torch.allclose(keys @ memory_vectors(module), module(keys), atol=1e-6)  # sum_i k_i v_i


@pytest.mark.parametrize("normed", [False, True])
def test_entropy_specialisation_and_top_tokens_against_brute_force(tiny, normed):
    [found] = surrogates.layer_statistics(tiny, [1], normed, top_k=3)
    entropy, p = brute_force(tiny, 1, normed)
    assert torch.allclose(found["entropy"].double(), entropy, atol=1e-5)
    size = p.shape[1]
    assert torch.allclose(surrogates.specialisation(found["entropy"].double(), size), 1 - entropy / math.log(size), atol=1e-6)
    assert torch.allclose(found["top_probabilities"].double(), p.topk(3, -1).values, atol=1e-6)
    assert torch.equal(found["top_ids"], p.topk(3, -1).indices)
    assert torch.allclose(found["probability_sum"].double(), p.sum(0), atol=1e-5)


def test_the_final_norm_flag_changes_the_surrogates(tiny):
    plain, normed = (surrogates.layer_statistics(tiny, [0], flag)[0]["entropy"] for flag in (False, True))
    assert not torch.allclose(plain, normed, atol=1e-4)


def test_chunked_products_equal_one_product_and_kl_is_brute_force(tiny, monkeypatch):
    head, vectors = tiny.get_output_embeddings().weight, memory_vectors(memory_modules(tiny)[0])
    log_target = torch.log_softmax(torch.randn(head.shape[0], generator=torch.Generator().manual_seed(0)), -1)
    whole = surrogates.surrogate_statistics(vectors, head, top_k=2, log_target=log_target)
    monkeypatch.setattr(surrogates, "CHUNK_ELEMENTS", 5 * head.shape[0])  # 5 vectors a chunk
    chunked = surrogates.surrogate_statistics(vectors, head, top_k=2, log_target=log_target)
    assert all(torch.allclose(whole[k].float(), chunked[k].float(), atol=1e-6) for k in whole)
    _, p = brute_force(tiny, 0, False)
    assert torch.allclose(whole["kl"].double(), (p * (p.log() - log_target.double())).sum(-1), atol=1e-5)


def test_command_and_tables_report_the_kinds_of_top_tokens(tiny_world, tiny_model_dir, tmp_path):
    out, vocabulary = tmp_path / "surrogates.parquet", tmp_path / "vocabulary.csv"
    run_module("infosteer.surrogates", "--model", tiny_model_dir, "--top-k", 4, "--final-norm", "false", "--threads", 1,
               "--out", out, "--vocabulary", vocabulary)
    frame = surrogate_tables.read_surrogates(out)
    tiny_model = models.load(tiny_model_dir)[0]
    assert len(frame) == sum(memory_vectors(m).shape[0] for m in memory_modules(tiny_model))
    entropy, _ = brute_force(tiny_model, 0, False)
    assert frame.filter(pl.col("layer") == 0)["entropy"].to_list() == pytest.approx(entropy.tolist(), abs=1e-5)
    facts = tmp_path / "facts.csv"
    with open(facts, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["entity", "attribute", "value"])
        writer.writerows((e, a, v) for e, attributes in tiny_world["facts"].items() for a, v in attributes.items())
    paths = {name: tmp_path / name for name in ("v.csv", "c.csv", "s.md")}
    run_module("report.surrogate_tables", "--surrogates", out, "--vocabulary", vocabulary, "--facts", facts, "--top-vectors", 2,
               "--vectors-csv", paths["v.csv"], "--categories-csv", paths["c.csv"], "--markdown", paths["s.md"])
    vectors = pl.read_csv(paths["v.csv"])
    assert vectors.group_by("layer").len()["len"].to_list() == [2, 2]
    assert "Most specialised memory vectors" in paths["s.md"].read_text()
    kinds = pl.read_csv(paths["c.csv"])
    assert set(kinds["category"]) == set(surrogate_tables.CATEGORIES)
    assert kinds.group_by("layer", "vectors").agg(pl.col("share").sum())["share"].to_list() == pytest.approx([1.0] * 4)
    figure = tmp_path / "surrogates.png"
    run_module("report.surrogate_figures", "--categories", paths["c.csv"], "--dpi", 40, "--figure", figure)
    assert figure.read_bytes()[:4] == b"\x89PNG"


def test_categories_and_shares_by_hand():
    facts = {"Ana Bob": {"city": "Rome", "year": "1901", "company": "Acorp", "field": "zology"}}
    kinds = surrogate_tables.token_categories(facts)
    assert kinds == {"Ana": "name", "Bob": "name", "Rome": "city", "1901": "year", "Acorp": "company", "zology": "field"}
    frame = pl.DataFrame({"layer": [0, 0, 0], "index": [0, 1, 2], "entropy": [1.0, 0.5, 2.0], "specialisation": [0.5, 0.8, 0.1],
                          "top_tokens": [["Rome", "the"], ["Ana", "Bob"], ["1901", "Rome"]]})
    vocabulary = ["Rome", "Ana", "Bob", "the", "1901", "a", "b", "c"]
    table = surrogate_tables.categories_table(frame, kinds, vocabulary, 1).filter(pl.col("category").is_in(["name", "city"]))
    rows = {(r["vectors"], r["category"]): r for r in table.iter_rows(named=True)}
    assert rows[("all", "city")]["share"] == pytest.approx(2 / 6) and rows[("all", "city")]["base_rate"] == pytest.approx(1 / 8)
    assert rows[("top 1", "name")]["share"] == 1.0 and rows[("top 1", "name")]["ratio"] == pytest.approx(4.0)  # vector 1: Ana Bob
    assert surrogate_tables.vectors_table(frame, kinds, 1)["categories"].to_list() == ["name 2"]
