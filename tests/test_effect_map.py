"""The claims' parts as numbers (claims_parts.csv) and the effect map built from them: the table of
two sweep points and its figure, on synthetic claims files."""

import math
from dataclasses import replace

import polars as pl
import pytest

from conftest import run_module
from infoflow.io import write_csv
from infoflow.report import effect_map
from infoflow.report.claims import check, preconditions, verdicts
from infoflow.report.claims.verdicts import NOT_APPLICABLE, NOT_TESTED, REPRODUCED, UNDERPOWERED, Claim, Estimate, Part
from test_claims import DIFFERENCES, run_inputs, steering_table


def test_each_judged_part_is_a_row_of_numbers_in_its_unit_with_the_claims_verdict():
    parts = [verdicts.judge("accuracy, points", Estimate(0.02, -0.01, 0.05), verdicts.points, 0, ">", paper=0.014),
             verdicts.judge("flux gap, nats", Estimate(0.3, 0.1, 0.5), verdicts.nats, 0, ">"),
             Part("ridge layer, depth fraction", "0.75 [0.50, 0.88]", REPRODUCED)]  # built from its text alone: no numbers
    claim = verdicts.judged("7", "claim", "paper", "source", verdicts.parts_text(parts), parts, "rule")
    rows = check.parts_frame([claim, Claim("8", "claim", "paper", "source", "", NOT_TESTED, "rule")]).to_dicts()
    assert [row["part"] for row in rows] == ["accuracy, points", "flux gap, nats", "ridge layer, depth fraction"]  # none for claim 8
    points, nats, text_only = rows
    assert (points["value"], points["low"], points["high"], points["paper"]) == pytest.approx((2.0, -1.0, 5.0, 1.4))
    assert points["unit"] == "points" and points["verdict"] == UNDERPOWERED and points["mde"] == pytest.approx(100 * parts[0].mde)
    assert (nats["value"], nats["unit"], nats["paper"], nats["verdict"]) == (0.3, "nats", None, REPRODUCED)
    assert all(math.isnan(text_only[k]) for k in ("value", "low", "high", "mde")) and text_only["unit"] == ""
    assert {row["claim_verdict"] for row in rows} == {claim.verdict}


def test_the_command_writes_the_parts_beside_an_unchanged_claims_csv(tmp_path):
    steering_table(diffs={"int": DIFFERENCES["holds"], "reg": DIFFERENCES["ambiguous"]}).write_csv(tmp_path / "steering.csv")
    out = {name: tmp_path / name for name in ("claims.md", "claims.csv", "claims_parts.csv")}
    run_module("report.claims", "--steering", tmp_path / "steering.csv", "--kernel", "gaussian", "--sigma", "1.0", "--bootstrap-samples",
               "50", "--seed", "0", "--markdown", out["claims.md"], "--csv", out["claims.csv"], "--parts", out["claims_parts.csv"])
    assert pl.read_csv(out["claims.csv"]).columns == list(check.CLAIM_COLUMNS) and "parts" not in check.CLAIM_COLUMNS
    parts = pl.read_csv(out["claims_parts.csv"], schema_overrides=check.PART_SCHEMA)
    assert parts.columns == list(check.PART_SCHEMA) and parts["number"].to_list() == ["1", "2", "4"]  # the steering claims run
    first = parts.row(0, named=True)
    assert first["part"].startswith("knowledge, ID accuracy minus SFT's") and first["unit"] == "points"
    assert (first["value"], first["low"], first["high"], first["paper"]) == pytest.approx((5.0, 2.0, 8.0, 2.06))
    assert first["verdict"] == first["claim_verdict"] == REPRODUCED


def write_point(run, claim_verdict):
    """A run's claims.csv and claims_parts.csv as the claims check writes them: claim 1 of two parts
    (`claim_verdict` after its preconditions), claim 2 not tested."""
    parts = [verdicts.judge(f"{task}, ID accuracy minus SFT's ({run}), points", Estimate(0.02, 0.01, 0.03), verdicts.points, 0, ">", 0.02)
             for task in ("knowledge", "modular")]
    judged = verdicts.judged("1", "Steering raises ID accuracy.", "p", "s", "", parts, "rule")
    claims = [replace(judged, verdict=claim_verdict),
              Claim("2", "Regularisation raises ID accuracy.", "p", "s", "", NOT_TESTED, "rule")]
    write_csv(f"results/{run}/claims.csv", check.claims_frame(claims))
    write_csv(f"results/{run}/claims_parts.csv", check.parts_frame(claims))


def test_the_effect_map_collects_every_point_with_its_settings_and_draws_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the sweep runs where results/ is
    write_point("tiny-layers2", NOT_APPLICABLE)
    write_point("tiny-layers12", REPRODUCED)
    assert effect_map.has_claims("tiny-layers2") and not effect_map.has_claims("tiny-layers4")
    points = [("layers2", "tiny-layers2", {"base_model.layers": 2, "tasks": ["knowledge"]}),
              ("layers12", "tiny-layers12", {"base_model.layers": 12, "tasks": ["knowledge"]})]
    write_csv("results/tiny/effect_map.csv", effect_map.collect(points))
    table = effect_map.read("results/tiny/effect_map.csv")
    assert effect_map.axes(table) == ["base_model.layers", "tasks"]
    assert table.select("point", "base_model.layers", "tasks", "number", "part_index", "claim_verdict").rows() == [
        ("layers2", 2, '["knowledge"]', "1", 0, NOT_APPLICABLE), ("layers2", 2, '["knowledge"]', "1", 1, NOT_APPLICABLE),
        ("layers2", 2, '["knowledge"]', "2", None, NOT_TESTED),  # a claim without parts keeps its place
        ("layers12", 12, '["knowledge"]', "1", 0, REPRODUCED), ("layers12", 12, '["knowledge"]', "1", 1, REPRODUCED),
        ("layers12", 12, '["knowledge"]', "2", None, NOT_TESTED)]
    assert table["claim"][0] == "Steering raises ID accuracy." and table["value"][0] == pytest.approx(2.0)
    run_module("report.effect_map_figures", "--table", tmp_path / "results/tiny/effect_map.csv", "--dpi", "40",
               "--out", tmp_path / "results/tiny/effect_map.png")
    assert (tmp_path / "results/tiny/effect_map.png").read_bytes()[:4] == b"\x89PNG"


def test_a_failed_precondition_reaches_every_part_row_of_its_claim():
    parts = [verdicts.judge("knowledge, points", Estimate(0.05, 0.02, 0.08), verdicts.points, 0, ">", 0.02)]
    claim = verdicts.judged("1", "claim", "paper", "source", "", parts, "rule")
    [applied] = preconditions.applied([claim], preconditions.measure(run_inputs(recall=0.5)))
    assert applied.parts == claim.parts
    assert check.parts_frame([applied])[["verdict", "claim_verdict"]].row(0) == (REPRODUCED, NOT_APPLICABLE)
