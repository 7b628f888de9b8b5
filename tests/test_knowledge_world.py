import csv

import pytest

from conftest import run_module
from infoflow.world import knowledge_world as kw
from infoflow.io import DataError

SIZES = {"city": 6, "year": 8, "company": 5, "field": 4}


def facts_dict(rows):
    facts = {}
    for entity, attribute, value in rows:
        facts.setdefault(entity, {})[attribute] = value
    return facts


def test_facts_are_deterministic_per_seed():
    assert kw.make_facts(30, SIZES, seed=1) == kw.make_facts(30, SIZES, seed=1)
    assert kw.make_facts(30, SIZES, seed=1) != kw.make_facts(30, SIZES, seed=2)


def test_every_entity_has_one_value_per_attribute_and_unique_name():
    rows = kw.make_facts(50, SIZES, seed=0)
    facts = facts_dict(rows)
    assert len(facts) == 50 and len(rows) == 50 * len(kw.ATTRIBUTES)
    assert all(set(a) == set(kw.ATTRIBUTES) for a in facts.values())
    values = {a: {f[a] for f in facts.values()} for a in kw.ATTRIBUTES}
    assert all(len(values[a]) <= SIZES[a] for a in kw.ATTRIBUTES)
    # Names and attribute values never share a word, so a value token always means that value.
    name_words = {w for name in facts for w in name.split()}
    assert not name_words & set().union(*values.values())


def test_splits_are_disjoint_by_entity_and_ood_rephrases_id():
    facts = facts_dict(kw.make_facts(40, SIZES, seed=0))
    data = kw.render(facts, biographies_per_entity=2, qa_documents_per_entity=0, sft_fraction=0.5, seed=0)
    train = {r["entity"] for r in data["train"]}
    test_id = {r["entity"] for r in data["test_id"]}
    assert len(train) == 20 and len(test_id) == 20 and not train & test_id
    assert [(r["entity"], r["attribute"], r["answer"]) for r in data["test_id"]] == [
        (r["entity"], r["attribute"], r["answer"]) for r in data["test_ood"]
    ]
    assert not {r["prompt"] for r in data["test_id"]} & {r["prompt"] for r in data["test_ood"]}
    # ID test prompts are train prompts with another name: the question templates are shared.
    templates = lambda rows: {r["prompt"].replace(r["entity"], "X") for r in rows}
    assert templates(data["test_id"]) == templates(data["train"])
    assert not templates(data["test_ood"]) & templates(data["train"])


def test_corpus_states_every_fact_and_cloze_asks_every_fact():
    facts = facts_dict(kw.make_facts(20, SIZES, seed=3))
    data = kw.render(facts, biographies_per_entity=2, qa_documents_per_entity=0, sft_fraction=0.5, seed=3)
    assert len(data["corpus"]) == 40
    for name, attributes in facts.items():
        bios = [b for b in data["corpus"] if b.startswith(name) or f" {name} " in b]
        assert len(bios) == 2
        for value in attributes.values():
            assert all(value in b.split() for b in bios)
    assert len(data["cloze"]) == 20 * len(kw.ATTRIBUTES)
    assert data["cloze"][0]["prompt"].endswith(("born in", "the year", "works for", "studies"))


def test_qa_documents_cover_sft_people_only_in_the_pretraining_phrasing():
    facts = facts_dict(kw.make_facts(20, SIZES, seed=0))
    data = kw.render(facts, biographies_per_entity=1, qa_documents_per_entity=3, sft_fraction=0.5, seed=0)
    qa_docs = [d for d in data["corpus"] if d.startswith("Q :")]
    assert len(qa_docs) == 10 * 3 and len(data["corpus"]) == 20 + 30
    sft_people = {r["entity"] for r in data["train"]}
    test_people = {r["entity"] for r in data["test_id"]}
    assert all(any(n in d for n in sft_people) and not any(n in d for n in test_people) for d in qa_docs)
    # Neither test phrasing occurs in pretraining.
    corpus = " ".join(data["corpus"])
    for row in data["test_id"][:8] + data["test_ood"][:8]:
        assert row["prompt"] not in corpus
        assert row["prompt"].replace(row["entity"], "").split(" A :")[0] not in corpus.replace(row["entity"], "")


def test_qa_documents_draw_from_the_first_qa_phrasings_of_the_pool_and_never_a_test_phrasing():
    facts = facts_dict(kw.make_facts(20, SIZES, seed=0))
    pool = [t for templates in kw.QUESTION_TEMPLATES_PRETRAIN.values() for t in templates]
    assert not set(pool) & {*kw.QUESTION_TEMPLATES_ID.values(), *kw.QUESTION_TEMPLATES_OOD.values()}
    names = sorted(facts)
    for phrasings in (1, 2, 4):
        corpus = " ".join(kw.render(facts, 1, 20, 0.5, 0, qa_phrasings=phrasings)["corpus"])
        for attribute, templates in kw.QUESTION_TEMPLATES_PRETRAIN.items():
            used = [i for i, t in enumerate(templates) if any(kw.qa_prompt(t.format(name=n)) in corpus for n in names)]
            assert used == list(range(phrasings)), (attribute, phrasings)


def test_the_ood_phrasings_are_new_combinations_of_words_read_in_pretraining():
    facts = facts_dict(kw.make_facts(20, SIZES, seed=0))
    data = kw.render(facts, 2, 3, 0.5, 0, qa_phrasings=4)
    read = {word for document in data["corpus"] for word in document.split()}
    for row in data["test_ood"]:
        assert set(row["prompt"].split()) <= read, row["prompt"]
        assert row["prompt"] not in " ".join(data["corpus"])


def write_facts(path, lines):
    path.write_text("entity,attribute,value\n" + "".join(line + "\n" for line in lines))


@pytest.mark.parametrize(
    "lines, problem",
    [
        (["Ann Bo,city,Paris", "Ann Bo,planet,Mars"], "row 3: unknown attribute 'planet'"),
        (["Ann Bo,city,"], "row 2: empty entity or value"),
        (["Ann Bo,city,New York"], "row 2: value 'New York' must be a single word"),
        (["Ann Bo,city"], "row 2: expected 3 columns"),
        (["Ann Bo,city,Paris", "Ann Bo,city,Rome"], "row 3: duplicate fact"),
    ],
)
def test_malformed_facts_name_file_and_row(tmp_path, lines, problem):
    path = tmp_path / "facts.csv"
    write_facts(path, lines)
    with pytest.raises(DataError, match=problem) as error:
        kw.read_facts(path)
    assert str(path) in str(error.value)


def test_render_command_fails_in_one_line_and_writes_nothing(tmp_path):
    facts = tmp_path / "facts.csv"
    write_facts(facts, ["Ann Bo,city,Paris", "Ann Bo,year", "Ann Bo,company,Acme", "Ann Bo,field,math"])
    outputs = {name: tmp_path / f"{name}.out" for name in ("corpus", "train", "test-id", "test-ood", "cloze")}
    result = run_module(
        "world.knowledge_world", "render", "--facts", facts, "--biographies-per-entity", 2, "--qa-documents-per-entity", 1, "--sft-fraction", 0.5,
        "--seed", 0, *[x for name, path in outputs.items() for x in (f"--{name}", path)], check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"infoflow: {facts}, row 3: expected 3 columns"]
    assert list(tmp_path.iterdir()) == [facts]


def test_facts_command_writes_a_readable_table(tmp_path):
    out = tmp_path / "facts.csv"
    run_module("world.knowledge_world", "facts", "--entities", 7, "--cities", 3, "--years", 3, "--companies", 2, "--fields", 2, "--seed", 0, "--out", out)
    with open(out) as f:
        assert len(list(csv.DictReader(f))) == 7 * len(kw.ATTRIBUTES)
    assert len(kw.read_facts(out)) == 7
