from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from conftest import run_module
from infoflow import parquet
from infoflow.training import models
from infoflow.training.generation import generate_ids
from infoflow.infosteer.flux import schema
from infoflow.io import read_examples
from infoflow.training.layers import memory_modules
from infoflow.infosteer.steer import key_entropy
from infoflow.world.token_classes import token_class


@pytest.mark.parametrize(
    "text, copied, expected",
    [
        (".", False, "punctuation"), (",", True, "punctuation"), ("?!", False, "punctuation"),
        ("the", False, "function"), ("The", True, "function"), ("is", False, "function"), ("an", False, "function"),
        ("1932", False, "number"), ("1932", True, "number"), ("1,000", False, "number"), ("3.5", False, "number"),
        ("Duneto", True, "copied"), ("Duneto", False, "content"), ("Nosidi", False, "content"),
        ("zeboology", False, "content"), ("S8", False, "content"), ("-", False, "punctuation"), ("A1", True, "copied"),
    ],
)
def test_token_classes(text, copied, expected):
    assert token_class(text, copied) == expected


def test_parquet_entropies_equal_a_direct_hooked_forward_pass(tiny_world, tiny_model_dir, tmp_path):
    out = tmp_path / "tokens.parquet"
    run_module("infosteer.flux", "--model", tiny_model_dir, "--prompts", tiny_world["paths"]["k_cloze"], "--sample", 6,
               "--sample-seed", 0, "--max-new-tokens", 5, "--batch-size", 4, "--normalization", "abs",
               "--task", "knowledge", "--method", "sft", "--seed", 0, "--threads", 1, "--out", out)
    table = pq.read_table(out)
    frame, entropy = table.drop_columns(["entropy"]).to_pandas(), parquet.vectors(table, "entropy")
    model, tokenizer = models.load(tiny_model_dir)
    prompts = {e["id"]: e["prompt"] for e in read_examples(tiny_world["paths"]["k_cloze"])}
    assert frame.prompt_id.nunique() > 1 and len(frame) > 6
    for prompt_id, rows in frame.groupby("prompt_id"):
        rows = rows.sort_values("position")
        prompt_ids = tokenizer(prompts[prompt_id]).input_ids
        response = generate_ids(model, tokenizer, [prompts[prompt_id]], 5, 1)[0]  # alone, unpadded
        assert rows.token_id.tolist() == response and rows.position.tolist() == list(range(len(response)))
        captured = []
        handles = [m.register_forward_pre_hook(lambda m, a: captured.append(key_entropy(a[0], "abs")[0])) for m in memory_modules(model)]
        with torch.no_grad():
            model(torch.tensor([prompt_ids + response]))
        for h in handles:
            h.remove()
        direct = torch.stack(captured, dim=-1)[len(prompt_ids):]  # [response tokens, layers]
        assert np.allclose(entropy[rows.index], direct.numpy(), atol=1e-4)  # cached decoding vs one full pass
        assert np.allclose(rows.flux, direct.mean(-1).numpy(), atol=1e-4)
        assert rows.copied.tolist() == [t in prompt_ids for t in response]
        assert rows.text.tolist() == [tokenizer.decode([t]) for t in response]


def write_tokens(path, method, seed, responses, layers=2):
    """A flux file from {prompt_id: [(text, class, flux), ...]}."""
    rows = [(p, i, text, cls, flux) for p, tokens in responses.items() for i, (text, cls, flux) in enumerate(tokens)]
    n = len(rows)
    with parquet.writer(path, schema(layers)) as write:
        write({"run": [f"k/{method}/seed{seed}"] * n, "task": ["k"] * n, "method": [method] * n, "seed": [seed] * n,
               "prompt_id": [r[0] for r in rows], "position": [r[1] for r in rows], "token_id": list(range(n)),
               "text": [r[2] for r in rows], "copied": [r[3] == "copied" for r in rows], "token_class": [r[3] for r in rows],
               "flux": [r[4] for r in rows], "entropy": np.array([[r[4] - 0.1, r[4] + 0.1] for r in rows])})
    return path


class Spans(HTMLParser):
    """Token texts of each response block: {(method, prompt): [texts]}."""

    def __init__(self):
        super().__init__()
        self.blocks, self.current, self.in_token = {}, None, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "div" and attrs.get("class") == "response":
            self.current = (attrs["data-method"], attrs["data-prompt"])
            self.blocks[self.current] = []
        self.in_token = tag == "span" and "tok" in attrs.get("class", "")

    def handle_endtag(self, tag):
        self.in_token = False

    def handle_data(self, data):
        if self.in_token:
            self.blocks[self.current].append(data)


def test_report_means_paired_differences_and_rendering(tmp_path):
    rng = np.random.default_rng(0)
    paths, responses = [], {}
    for method, shift in (("sft", 0.0), ("reg", 0.5)):
        for seed in (0, 1):
            tokens = {f"p{i}": [("Nosidi", "content", 3.0 + shift + 0.01 * rng.normal()), (".", "punctuation", 1.0 + 0.01 * rng.normal()),
                                ("<b>&", "content", 3.0 + shift)] for i in range(6)}
            responses[(method, seed)] = tokens
            paths.append(write_tokens(tmp_path / f"{method}{seed}.parquet", method, seed, tokens))
    prompts = tmp_path / "prompts.jsonl"
    pd.DataFrame({"id": [f"p{i}" for i in range(6)], "prompt": [f"prompt {i} <x>" for i in range(6)]}).to_json(prompts, orient="records", lines=True)
    out = {k: tmp_path / f"{k}.out" for k in ("classes", "comparison", "layers", "markdown", "html")}
    run_module("report.flux_tables", "--tokens", *paths, "--prompts", prompts, "--bootstrap-samples", 300, "--seed", 0,
               "--render-prompts", 2, "--classes", out["classes"], "--comparison", out["comparison"],
               "--layers", out["layers"], "--markdown", out["markdown"], "--html", out["html"])
    run_module("report.flux_figures", "--tokens", *paths, "--classes", out["classes"], "--render-prompts", 2, "--dpi", 40,
               "--examples-figure", tmp_path / "ex.png", "--classes-figure", tmp_path / "bars.png")
    classes = pd.read_csv(out["classes"]).set_index(["method", "token_class"])
    assert classes.flux[("sft", "content")] == pytest.approx(3.0, abs=0.01)
    assert classes.flux[("reg", "content")] == pytest.approx(3.5, abs=0.01)
    assert classes.tokens[("sft", "content")] == 2 * 6 * 2 and classes.tokens[("sft", "function")] == 0
    assert np.isnan(classes.flux[("sft", "function")])
    row = classes.loc[("sft", "punctuation")]
    assert row.ci95_low <= row.flux <= row.ci95_high and row.ci95_high - row.ci95_low < 0.05
    comparison = pd.read_csv(out["comparison"]).set_index("token_class")
    assert comparison.diff_vs_sft["content"] == pytest.approx(0.5, abs=0.01) and comparison.p_value["content"] < 0.01
    assert abs(comparison.diff_vs_sft["punctuation"]) < 0.02 and comparison.p_value["punctuation"] > 0.05
    layers = pd.read_csv(out["layers"]).set_index(["method", "token_class", "layer"]).entropy
    assert layers[("sft", "punctuation", 1)] - layers[("sft", "punctuation", 0)] == pytest.approx(0.2, abs=1e-5)
    spans = Spans()
    spans.feed(out["html"].read_text())
    assert set(spans.blocks) == {(m, p) for m in ("sft", "reg") for p in ("p0", "p1")}
    for (method, prompt), texts in spans.blocks.items():
        assert texts == [text for text, _, _ in responses[(method, 0)][prompt]]  # every token once, in order
    assert "Steered minus SFT" in out["markdown"].read_text()
    assert (tmp_path / "ex.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "bars.png").read_bytes()[:4] == b"\x89PNG"
