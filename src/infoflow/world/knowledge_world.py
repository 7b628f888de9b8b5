"""The synthetic knowledge world: made-up people with attributes, and the texts built from them.

Two steps, each a pipeline rule:
  facts  -> results/data/knowledge/facts.csv (entity, attribute, value), drawn from a seed;
  render -> a pretraining corpus of paraphrased biographies, and QA splits for post-training.

SFT sees QA about a subset of entities only. The in-distribution (ID) test asks the same question
templates about the other entities, so answering needs facts the base model learned in pretraining;
the out-of-distribution (OOD) test asks about those entities with unseen phrasings.
"""

import argparse
import csv
import random

from infoflow import cli
from infoflow.io import DataError, write_jsonl, write_text

# Sentence templates per attribute. The first biography template, cut before the value, is the
# cloze prompt used to check that the base model holds the fact.
BIOGRAPHY_TEMPLATES = {
    "city": [
        "{name} was born in {value} .",
        "{name} grew up in the city of {value} .",
        "the hometown of {name} is {value} .",
    ],
    "year": [
        "{name} entered the world in the year {value} .",
        "{name} 's birth year is {value} .",
        "the year {name} was born is {value} .",
    ],
    "company": [
        "{name} works for {value} .",
        "{name} is employed by {value} .",
        "the employer of {name} is {value} .",
    ],
    "field": [
        "{name} studies {value} .",
        "{name} is an expert in {value} .",
        "the research area of {name} is {value} .",
    ],
}
QUESTION_TEMPLATES_ID = {
    "city": "where was {name} born ?",
    "year": "in which year was {name} born ?",
    "company": "which company does {name} work for ?",
    "field": "what field does {name} study ?",
}
# Pretraining phrasings, used only in the pretraining corpus for the SFT people, none of them the ID
# or the OOD one: real pretraining text holds questions and answers too, and without such text a
# small model stores the facts but does not learn to extract them in a question context (Allen-Zhu &
# Li, Physics of LMs 3.1, "mixed training"; measured here: 99.7% cloze recall, yet 11% ID accuracy
# after SFT). Its QA documents draw from the first `qa_phrasings` of each list: with one, the base
# model answers unseen phrasings mostly out of format (measured on the 8-layer default of 2026-12-01
# with 4 demonstrations, cut at the next question: 21% of OOD answers in format, 67% of ID ones), as
# a base model that has met one way of asking would; real pretraining text asks the same thing in
# many ways.
QUESTION_TEMPLATES_PRETRAIN = {
    "city": ["what city was {name} born in ?", "what is the hometown of {name} ?", "where is {name} from ?",
             "in what city did {name} grow up ?"],
    "year": ["what year was {name} born in ?", "when was {name} born ?", "what is the birth year of {name} ?",
             "{name} was born in what year ?"],
    "company": ["what company employs {name} ?", "where does {name} work ?", "who is the employer of {name} ?",
                "for what firm does {name} work ?"],
    "field": ["what is the field of {name} ?", "what does {name} study ?", "what is {name} an expert in ?",
              "what is the research area of {name} ?"],
}
# Unseen phrasings made of words the model has read in pretraining, in new combinations: a model
# cannot read a word it never saw (the first OOD phrasings had 'salary', 'pays', 'discipline',
# 'birthplace' and 'come', none in the corpus; the base model answered 46% of them in format).
QUESTION_TEMPLATES_OOD = {
    "city": "{name} grew up in what city ?",
    "year": "{name} entered the world in what year ?",
    "company": "{name} is employed by what company ?",
    "field": "{name} is an expert in what field ?",
}
ATTRIBUTES = tuple(BIOGRAPHY_TEMPLATES)
FIRST_YEAR = 1900
CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"


def qa_prompt(question):
    return f"Q : {question} A :"


def cloze_prompt(attribute, name):
    return BIOGRAPHY_TEMPLATES[attribute][0].split("{value}")[0].format(name=name).strip()


def made_up_words(rng, count, syllables, taken):
    """`count` distinct pronounceable words, none of them in `taken` (which is updated)."""
    words = []
    while len(words) < count:
        word = "".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) for _ in range(syllables))
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


def make_facts(n_entities, values_per_attribute, seed):
    """Rows (entity, attribute, value) for `n_entities` people with two-word names (unique last names)."""
    rng = random.Random(seed)
    taken = set()
    values = {
        "city": [w.capitalize() for w in made_up_words(rng, values_per_attribute["city"], 3, taken)],
        "year": [str(FIRST_YEAR + i) for i in range(values_per_attribute["year"])],
        "company": [w.capitalize() + "corp" for w in made_up_words(rng, values_per_attribute["company"], 2, taken)],
        "field": [w + "ology" for w in made_up_words(rng, values_per_attribute["field"], 2, taken)],
    }
    # First names come from a small shared pool; last names are unique, so one token identifies a
    # person (as in the sizing prototype of the embedded world, which learned its facts in minutes).
    first_names = [w.capitalize() for w in made_up_words(rng, max(4, n_entities // 10), 2, taken)]
    last_names = [w.capitalize() for w in made_up_words(rng, n_entities, 3, taken)]
    names = [f"{rng.choice(first_names)} {last}" for last in last_names]
    return [(name, attribute, rng.choice(values[attribute])) for name in names for attribute in ATTRIBUTES]


def read_facts(path):
    """Read facts.csv into {entity: {attribute: value}}; DataError names the file and row."""
    facts = {}
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != ["entity", "attribute", "value"]:
            raise DataError(f"{path}, row 1: header must be entity,attribute,value, got {reader.fieldnames}")
        for row_number, row in enumerate(reader, start=2):
            where = f"{path}, row {row_number}"
            if None in row or any(v is None for v in row.values()):
                raise DataError(f"{where}: expected 3 columns")
            entity, attribute, value = (row[k].strip() for k in ("entity", "attribute", "value"))
            if not entity or not value:
                raise DataError(f"{where}: empty entity or value")
            if attribute not in ATTRIBUTES:
                raise DataError(f"{where}: unknown attribute '{attribute}' (expected one of {', '.join(ATTRIBUTES)})")
            if len(value.split()) != 1:
                raise DataError(f"{where}: value '{value}' must be a single word")
            if attribute in facts.setdefault(entity, {}):
                raise DataError(f"{where}: duplicate fact {entity} / {attribute}")
            facts[entity][attribute] = value
    if not facts:
        raise DataError(f"{path}: no facts")
    for entity, attributes in facts.items():
        missing = set(ATTRIBUTES) - set(attributes)
        if missing:
            raise DataError(f"{path}: entity '{entity}' lacks attribute(s) {', '.join(sorted(missing))}")
    return facts


def biography(rng, name, attributes):
    sentences = [rng.choice(BIOGRAPHY_TEMPLATES[a]).format(name=name, value=v) for a, v in attributes.items()]
    rng.shuffle(sentences)
    return " ".join(sentences)


def qa_document(rng, name, attributes, phrasings):
    """One question per attribute, each in one of the first `phrasings` pretraining phrasings, in a random order."""
    def phrasing(attribute):  # with one phrasing no draw, so such a corpus is the one-phrasing world's to the byte
        pool = QUESTION_TEMPLATES_PRETRAIN[attribute][:phrasings]
        return pool[0] if len(pool) == 1 else rng.choice(pool)

    questions = [f"{qa_prompt(phrasing(a).format(name=name))} {v}" for a, v in attributes.items()]
    rng.shuffle(questions)
    return " ".join(questions)


def qa_rows(entities, facts, templates, split):
    return [
        {
            "id": f"{split}-{i:05d}",
            "split": split,
            "prompt": qa_prompt(templates[attribute].format(name=name)),
            "answer": facts[name][attribute],
            "entity": name,
            "attribute": attribute,
        }
        for i, (name, attribute) in enumerate((n, a) for n in entities for a in ATTRIBUTES)
    ]


def render(facts, biographies_per_entity, qa_documents_per_entity, sft_fraction, seed, qa_phrasings=1):
    """The pretraining corpus (one document a line) and the SFT / ID / OOD / cloze example lists.

    The corpus has biographies of everyone and QA documents (pretraining phrasing) about the SFT
    people only, so the test people's facts appear in biographies alone.
    """
    rng = random.Random(seed)
    entities = sorted(facts)
    shuffled = entities[:]
    rng.shuffle(shuffled)
    n_sft = round(sft_fraction * len(entities))
    sft_entities, test_entities = sorted(shuffled[:n_sft]), sorted(shuffled[n_sft:])
    if not sft_entities or not test_entities:
        raise DataError(f"sft_fraction {sft_fraction} leaves no entities for training or testing")
    corpus = [biography(rng, name, facts[name]) for name in entities for _ in range(biographies_per_entity)]
    corpus += [qa_document(rng, name, facts[name], qa_phrasings) for name in sft_entities for _ in range(qa_documents_per_entity)]
    rng.shuffle(corpus)
    cloze = [
        {"id": f"cloze-{i:05d}", "split": "cloze", "prompt": cloze_prompt(a, n), "answer": facts[n][a], "entity": n, "attribute": a}
        for i, (n, a) in enumerate((n, a) for n in entities for a in ATTRIBUTES)
    ]
    return {
        "corpus": corpus,
        "train": qa_rows(sft_entities, facts, QUESTION_TEMPLATES_ID, "train"),
        "test_id": qa_rows(test_entities, facts, QUESTION_TEMPLATES_ID, "test_id"),
        "test_ood": qa_rows(test_entities, facts, QUESTION_TEMPLATES_OOD, "test_ood"),
        "cloze": cloze,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("facts", help="draw the facts table")
    p.add_argument("--entities", type=int, required=True)
    p.add_argument("--cities", type=int, required=True)
    p.add_argument("--years", type=int, required=True)
    p.add_argument("--companies", type=int, required=True)
    p.add_argument("--fields", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True)
    r = sub.add_parser("render", help="write the corpus and QA splits from a facts table")
    r.add_argument("--facts", required=True)
    r.add_argument("--biographies-per-entity", type=int, required=True)
    r.add_argument("--qa-documents-per-entity", type=int, required=True)
    r.add_argument("--qa-phrasings", type=int, default=1, choices=range(1, 1 + len(QUESTION_TEMPLATES_PRETRAIN["city"])),
                   help="pretraining phrasings per attribute the QA documents use")
    r.add_argument("--sft-fraction", type=float, required=True)
    r.add_argument("--seed", type=int, required=True)
    for name in ("corpus", "train", "test-id", "test-ood", "cloze"):
        r.add_argument(f"--{name}", required=True)
    args = parser.parse_args()
    cli.setup()

    if args.step == "facts":
        sizes = {"city": args.cities, "year": args.years, "company": args.companies, "field": args.fields}
        rows = make_facts(args.entities, sizes, args.seed)
        write_text(args.out, "entity,attribute,value\n" + "".join(f"{e},{a},{v}\n" for e, a, v in rows))
    else:
        data = render(read_facts(args.facts), args.biographies_per_entity, args.qa_documents_per_entity, args.sft_fraction, args.seed,
                      args.qa_phrasings)
        write_text(args.corpus, "\n".join(data["corpus"]) + "\n")
        for split in ("train", "test_id", "test_ood", "cloze"):
            write_jsonl(getattr(args, split), data[split])


if __name__ == "__main__":
    cli.run(main)
