r"""Public NLP data sets in one common schema, written as Parquet, and scoring of generated answers.

Every adapter maps one record in its data set's public field layout (as on the Hugging Face hub, or
LLM-Adapters' json files for the out-of-distribution math sets) to one row of this schema:

    id           string  '{dataset}-{split}-{NNNNN}', the record's position in the source split
    split        string  the split asked for
    source       string  the data set's name in ADAPTERS, e.g. 'boolq'
    prompt       string  the whole text the model is given; it ends with ANSWER_LEAD, and the model
                         continues with ' ' + answer (the space the rest of the pipeline adds)
    answer       string  the gold answer as the model should produce it (lower case for labels)
    answer_type  string  'choice', 'yes_no' or 'number'
    choices      list<string>, null unless answer_type is 'choice': the accepted labels, in order

Prompts follow LLM-Adapters / ReFT (instruction, numbered options, 'Answer format:' line, no chain of
thought), then ANSWER_LEAD = '\n\nThe correct answer is' on every data set:
  - boolq ('yes_no', answer 'true'/'false'; the passage is not shown, as in LLM-Adapters):
    'Please answer the following question with true or false, question: {question}?\n\n
    Answer format: true/false'
  - piqa, siqa, hellaswag, winogrande, arc_easy, arc_challenge, openbookqa, ecqa ('choice'):
    '{instruction}: {text}\n\n{Label}1: {option}\n\n...\n\nAnswer format: {label}1/{label}2/...'
    with labels solution / answer / ending / option / answer / answer / answer / answer.
  - gsm8k, addsub, singleeq, multiarith, mawps, svamp ('number', answer without thousands commas,
    integral values without '.0'; SVAMP's hub layout gives question = Body + ' ' + Question):
    'Please solve the following problem and answer with a number: {question}\n\nAnswer format: number'
  - aqua ('choice', letters 'a'..'e'; options shown as given, e.g. 'A)21'):
    'Please choose the correct answer to the question: {question}\n\nA)21\n\n...\n\nAnswer format: a/b/c/d/e'
  - clutrr ('choice' over CLUTRR_RELATIONS; CLUTRR's query ('A', 'B') with target t means 'B is A's t';
    the [ ] around names in the story are dropped): 'Please choose the correct relation to complete
    the sentence "B is A's ..." for the story: {story}\n\nAnswer format: aunt/son-in-law/...'

Scoring (extract_answer, is_correct): the answer is searched in the text after the first
'answer is' if the text has one and holds an answer there, else in the whole text. A choice is the
first accepted label standing as a word (case-insensitive; the longest label wins at one place, so
'grandson' is not 'son'); yes/no also accepts yes -> true, no -> false; a number is the first one
after 'answer is', else the last one in the text, compared within NUMBER_TOLERANCE. No answer found
counts as wrong.

Local files are read row by row, so that a bad row is named by file and row: JSON lines (row = line;
blank lines are passed over), a .json file holding one array (LLM-Adapters' layout; row = element),
CSV with a header line (row = record after the header) and Parquet. A source record that no row of
the schema can be made of is a BadRow of one of these kinds (`reason`):
  malformed      not valid JSON, not a JSON object, or a CSV row with another number of fields than
                 the header
  not_utf8       bytes that are not UTF-8 text
  missing_field  a field the adapter reads is absent or null
  empty_field    it is blank (an empty answer, question or option)
  wrong_type     text or a list of texts expected, e.g. a number where the question should be
  bad_value      a label that is not one of the options, an answer that is not a number, ...
An entry's `on_bad_rows` says what it does: 'error' (the default) stops with '<file>, row N:
<problem>'; 'skip' leaves it out, and the job's log and --summary file count the skipped rows by
reason with the first few of each. Ids stay the rows' positions in the source either way. A file
that cannot be read at all (missing, truncated Parquet, a .json array that is not valid JSON) stops
the job in both modes.
"""

import argparse
import ast
import csv
import json
import logging
import random
import re
from pathlib import Path

import pyarrow as pa

from infoflow import cli, parquet
from infoflow.io import DataError, open_text, read_parquet, utf8_problem, write_json

log = logging.getLogger("infoflow.real_data")

ANSWER_LEAD = "\n\nThe correct answer is"
NUMBER_TOLERANCE = 1e-4  # LLM-Adapters' tolerance for float answers
SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("split", pa.string()),
        ("source", pa.string()),
        ("prompt", pa.string()),
        ("answer", pa.string()),
        ("answer_type", pa.string()),
        ("choices", pa.list_(pa.string())),
    ]
)
# The relation words of CLUTRR, in the order of its integer `target` on the hub.
CLUTRR_RELATIONS = (
    "aunt", "son-in-law", "grandfather", "brother", "sister", "father", "mother", "grandmother", "uncle",
    "daughter-in-law", "grandson", "granddaughter", "father-in-law", "mother-in-law", "nephew", "son",
    "daughter", "niece", "husband", "wife", "sister-in-law",
)
YES_NO = {"true": "true", "false": "false", "yes": "true", "no": "false"}
LOCAL_FORMATS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}
ON_BAD_ROWS = ("error", "skip")
FIRST_SKIPPED = 5  # skipped rows quoted per reason in the log and summary


class BadRow(ValueError):
    """A source record that no row of the schema can be made of; `reason` is its kind (module docstring)."""

    def __init__(self, reason, problem):
        super().__init__(problem)
        self.reason = reason


class Record(dict):
    """A source record as the adapters read it. A null field counts as missing (the loaders give a
    field that some rows lack to every row, as null where it is absent), a blank string as empty."""

    def __getitem__(self, key):
        value = super().__getitem__(key)
        if value is None:
            raise KeyError(key)
        if isinstance(value, str) and not value.strip():
            raise BadRow("empty_field", f"field '{key}' is empty")
        return value

    def text(self, key, optional=False):
        """self[key] as prompt text (a number or list there is a wrong or shifted column); an
        optional field may also be absent, null or blank, and is then ''."""
        if optional and not str(self.get(key) or "").strip():
            return ""
        value = self[key]
        if not isinstance(value, str):
            raise BadRow("wrong_type", f"field '{key}' is {type(value).__name__} {value!r:.60}, not text")
        return value

    def texts(self, key):
        """self[key] as a list of option texts."""
        values = self[key]
        if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
            raise BadRow("wrong_type", f"field '{key}' is {values!r:.60}, not a list of texts")
        if not values or not all(value.strip() for value in values):
            raise BadRow("empty_field", f"field '{key}' has no options or an empty one: {values!r:.60}")
        return values


# --- rows of each answer type -------------------------------------------------------------------


def label_position(record, key, labels):
    """Position of record[key] among `labels`, compared as lower-case strings (CSV files give ints)."""
    value = str(record[key]).strip().lower()
    lowered = [str(label).lower() for label in labels]
    if value not in lowered:
        raise BadRow("bad_value", f"field '{key}' is {record[key]!r}, not one of {list(labels)}")
    return lowered.index(value)


def choice_row(head, labels, option_lines, gold):
    prompt = "\n\n".join([head, *option_lines, f"Answer format: {'/'.join(labels)}"]) + ANSWER_LEAD
    return {"prompt": prompt, "answer": labels[gold], "answer_type": "choice", "choices": list(labels)}


def numbered_choice_row(head, word, options, gold):
    """Options shown as 'Word1: option' and answered 'word1', as in LLM-Adapters."""
    labels = [f"{word}{k}" for k in range(1, len(options) + 1)]
    return choice_row(head, labels, [f"{label.capitalize()}: {option}" for label, option in zip(labels, options)], gold)


def to_number(value, key):
    try:
        return float(str(value).replace(",", "").replace("$", "").strip())
    except ValueError:
        raise BadRow("bad_value", f"field '{key}' is {value!r}, not a number") from None


def format_number(value):
    return str(int(value)) if value.is_integer() else repr(value)


def number_row(question, value):
    prompt = f"Please solve the following problem and answer with a number: {question}\n\nAnswer format: number{ANSWER_LEAD}"
    return {"prompt": prompt, "answer": format_number(value), "answer_type": "number", "choices": None}


# --- adapters: one public record -> one row (without id, split, source) --------------------------


def boolq(r):
    prompt = f"Please answer the following question with true or false, question: {r.text('question')}?\n\nAnswer format: true/false{ANSWER_LEAD}"
    answer = ("false", "true")[label_position(r, "answer", ["false", "true"])]
    return {"prompt": prompt, "answer": answer, "answer_type": "yes_no", "choices": None}


def piqa(r):
    head = f"Please choose the correct solution to the question: {r.text('goal')}"
    options = [r.text("sol1"), r.text("sol2")]
    return numbered_choice_row(head, "solution", options, label_position(r, "label", ["0", "1"]))


def siqa(r):
    head = f"Please choose the correct answer to the question: {r.text('context')} {r.text('question')}"
    options = [r.text("answerA"), r.text("answerB"), r.text("answerC")]
    return numbered_choice_row(head, "answer", options, label_position(r, "label", ["1", "2", "3"]))


def hellaswag(r):
    head = f"Please choose the correct ending to complete the given sentence: {r.text('activity_label')}: {r.text('ctx')}"
    endings = r.texts("endings")
    return numbered_choice_row(head, "ending", endings, label_position(r, "label", [str(k) for k in range(len(endings))]))


def winogrande(r):
    head = f"Please choose the correct answer to fill in the blank to complete the given sentence: {r.text('sentence')}"
    options = [r.text("option1"), r.text("option2")]
    return numbered_choice_row(head, "option", options, label_position(r, "answer", ["1", "2"]))


def lettered_question(r, question_key):
    """ARC and OpenBookQA: options as lists {text, label}, the gold one named by its label in answerKey."""
    choices = r["choices"]
    if not isinstance(choices, dict):
        raise BadRow("wrong_type", f"field 'choices' is {choices!r:.60}, not {{'text': [...], 'label': [...]}}")
    choices = Record(choices)
    options, labels = choices.texts("text"), choices.texts("label")
    if len(options) != len(labels):
        raise BadRow("bad_value", f"field 'choices' has {len(options)} texts but {len(labels)} labels")
    head = f"Please choose the correct answer to the question: {r.text(question_key)}"
    return numbered_choice_row(head, "answer", options, label_position(r, "answerKey", labels))


def arc(r):
    return lettered_question(r, "question")


def openbookqa(r):
    return lettered_question(r, "question_stem")


def ecqa(r):
    options = [r.text(f"q_op{k}") for k in range(1, 6)]
    head = f"Please choose the correct answer to the question: {r.text('q_text')}"
    return numbered_choice_row(head, "answer", options, label_position(r, "q_ans", options))


def gsm8k(r):
    _, marker, final = r.text("answer").rpartition("####")
    if not marker:
        raise BadRow("bad_value", "field 'answer' has no '#### <number>' line")
    return number_row(r.text("question"), to_number(final, "answer"))


def llm_adapters_math(r):
    """AddSub, SingleEq, MultiArith, MAWPS, SVAMP as LLM-Adapters ships them: {instruction, input, output, answer}."""
    question = " ".join(filter(None, [r.text("instruction"), r.text("input", optional=True)]))  # `input` is empty in their files
    return number_row(question, to_number(r["answer"], "answer"))


def svamp(r):
    """SVAMP in its hub layout {Body, Question, Answer}, or in LLM-Adapters' layout."""
    if "Body" not in r:
        return llm_adapters_math(r)
    return number_row(f"{r.text('Body').strip()} {r.text('Question').strip()}", to_number(r["Answer"], "Answer"))


def aqua(r):
    options = r.texts("options")  # 'A)21', 'B)21.5', ...
    letters = [option.split(")", 1)[0].strip().lower() for option in options]
    head = f"Please choose the correct answer to the question: {r.text('question')}"
    return choice_row(head, letters, options, label_position(r, "correct", letters))


def clutrr(r):
    query = r["query"]
    try:
        first, second = ast.literal_eval(query) if isinstance(query, str) else query
    except (ValueError, SyntaxError, TypeError):
        raise BadRow("bad_value", f"field 'query' is {query!r}, not a pair of names like \"('Alice', 'Bob')\"") from None
    story = r.text("story").replace("[", "").replace("]", "")  # CLUTRR marks every name as [Name]
    head = f"Please choose the correct relation to complete the sentence \"{second} is {first}'s ...\" for the story: {story}"
    return choice_row(head, CLUTRR_RELATIONS, [], label_position(r, "target_text", CLUTRR_RELATIONS))


ADAPTERS = {
    "boolq": boolq,
    "piqa": piqa,
    "siqa": siqa,
    "hellaswag": hellaswag,
    "winogrande": winogrande,
    "arc_easy": arc,
    "arc_challenge": arc,
    "openbookqa": openbookqa,
    "gsm8k": gsm8k,
    "addsub": llm_adapters_math,
    "singleeq": llm_adapters_math,
    "multiarith": llm_adapters_math,
    "mawps": llm_adapters_math,
    "svamp": svamp,
    "aqua": aqua,
    "clutrr": clutrr,
    "ecqa": ecqa,
}


# --- loading and writing -------------------------------------------------------------------------


def local_files(path, split):
    """(files, loader) of `split`: `path` itself, or in the folder `path` '{split}.ext' or '{split}-*.ext'."""
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.suffix in LOCAL_FORMATS and (f.stem == split or f.name.startswith(f"{split}-")))
        if not files:
            raise DataError(f"{path}: no file for split '{split}' ({split}.jsonl, .json, .parquet or .csv)")
    elif path.suffix in LOCAL_FORMATS:
        files = [path]
    else:
        raise DataError(f"{path}: not a {', '.join(LOCAL_FORMATS)} file")
    loaders = {LOCAL_FORMATS[f.suffix] for f in files}
    if len(loaders) > 1:
        raise DataError(f"{path}: files of split '{split}' in several formats: {[f.name for f in files]}")
    return files, loaders.pop()


def json_record(text):
    """The record in `text` (a line of a JSON-lines file, or an element of a JSON array), or the
    BadRow it is."""
    problem = utf8_problem(text)
    if problem:
        return BadRow("not_utf8", problem)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        return BadRow("malformed", f"not valid JSON ({e.msg})")
    return value if isinstance(value, dict) else BadRow("malformed", "not a JSON object")


def json_records(path):
    """(row, record or BadRow) of a JSON-lines file, or of a .json file holding one JSON array."""
    with open_text(path) as f:
        text = f.read()
    if not re.match(r"\s*\[", text):
        yield from ((row, json_record(line)) for row, line in enumerate(text.split("\n"), start=1) if line.strip())
        return
    try:
        elements = json.loads(text)
    except json.JSONDecodeError as e:  # one array: a syntax error anywhere leaves no row readable
        raise DataError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    # Each element dumped again, so that one function checks the rows of both layouts.
    yield from ((row, json_record(json.dumps(element, ensure_ascii=False))) for row, element in enumerate(elements, start=1))


def csv_record(header, values):
    """The record of one CSV row, or the BadRow it is."""
    problem = utf8_problem("".join(values))
    if problem:
        return BadRow("not_utf8", problem)
    if len(values) != len(header):
        return BadRow("malformed", f"{len(values)} fields, but the header has {len(header)}")
    return dict(zip(header, values))


def csv_records(path):
    """(row, record or BadRow) of a CSV file with a header line; blank lines are passed over."""
    with open_text(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        try:
            yield from ((row, csv_record(header, values)) for row, values in enumerate(filter(None, reader), start=1))
        except csv.Error as e:  # e.g. a field over csv's size limit: the reader cannot go on
            raise DataError(f"{path}, line {reader.line_num}: not valid CSV ({e})") from None


READERS = {
    "json": json_records,
    "csv": csv_records,
    "parquet": lambda path: enumerate(read_parquet(path).to_pylist(), start=1),
}


def read_records(source, split):
    """(('<file>, row N', record or BadRow) of every row, the name to quote for the whole source)
    from a local file or folder, or a hub id 'id[:config]'."""
    path = Path(source)
    if path.exists():
        files, loader = local_files(path, split)
        origin = str(files[0]) if len(files) == 1 else f"{source} (split {split})"
        return ((f"{file}, row {row}", record) for file in files for row, record in READERS[loader](file)), origin
    if path.suffix in LOCAL_FORMATS:
        raise DataError(f"{source}: no such file")
    import datasets  # only hub ids need it; scoring is imported where it is not installed

    datasets.disable_progress_bars()  # job logs are files: no progress bars in them
    hub_id, _, config = source.partition(":")
    try:
        data = datasets.load_dataset(hub_id, config or None, split=split)
    except (ConnectionError, FileNotFoundError) as e:  # offline, unreachable or unknown on the hub
        reason = str(e).splitlines()[0]
        raise DataError(
            f"{source}: not a local file or folder, and the Hugging Face hub cannot give it ({reason}); "
            "give a local path as the source, or turn the network on (unset HF_HUB_OFFLINE)"
        ) from None
    except (ValueError, RuntimeError) as e:  # an unknown split or config; a repo with a loading script (datasets >= 4 runs none)
        raise DataError(f"{source}: {str(e).splitlines()[0]}") from None
    return ((f"{source}, row {row}", record) for row, record in enumerate(data.to_list(), start=1)), source


class RowCount:
    """Rows read, and rows skipped by reason with the first FIRST_SKIPPED of each as
    '<file>, row N: <problem>': what the log and the summary file report."""

    def __init__(self):
        self.read = 0
        self.skipped = {}

    def skip(self, where, problem):
        reason = self.skipped.setdefault(problem.reason, {"rows": 0, "first": []})
        reason["rows"] += 1
        if len(reason["first"]) < FIRST_SKIPPED:
            reason["first"].append(f"{where}: {problem}")

    def summary(self, written):
        """Rows read, skipped, kept (read - skipped) and written (kept, after each entry's limit)."""
        skipped = sum(reason["rows"] for reason in self.skipped.values())
        return {
            "rows_read": self.read, "rows_skipped": skipped, "rows_kept": self.read - skipped,
            "rows_written": written, "skipped": self.skipped,
        }


def adapted(adapter, record):
    """adapter(record); BadRow if the record is one, or if no row can be made of it."""
    if isinstance(record, BadRow):
        raise record
    try:
        return adapter(Record(record))
    except KeyError as e:
        raise BadRow("missing_field", f"missing field '{e.args[0]}'") from None


def load(name, source, split, on_bad_rows="error", count=None):
    """The rows of data set `name` (a key of ADAPTERS) read from `source` (see read_records).

    A bad row raises DataError '<file>, row N: <problem>', or, with on_bad_rows 'skip', is left out;
    `count` (a RowCount) counts the rows read and skipped.
    """
    adapter = ADAPTERS[name]
    count = RowCount() if count is None else count
    records, origin = read_records(source, split)
    rows, skipped = [], 0
    for number, (where, record) in enumerate(records, start=1):
        count.read += 1
        try:
            row = adapted(adapter, record)
        except BadRow as problem:
            if on_bad_rows != "skip":
                raise DataError(f"{where}: {problem}") from None
            count.skip(where, problem)
            skipped += 1
            continue
        rows.append({"id": f"{name}-{split}-{number - 1:05d}", "split": split, "source": name, **row})
    if skipped:
        log.warning("%s: %d bad rows skipped", origin, skipped)
    if not rows:
        raise DataError(f"{origin}: no records for split '{split}'" + (f" ({skipped} bad rows skipped)" if skipped else ""))
    return rows


def sample(rows, limit, seed):
    """At most `limit` rows drawn without replacement, kept in their source order."""
    if limit is None or limit >= len(rows):
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), limit))
    return [rows[i] for i in keep]


def write(rows, path):
    """Write rows as Parquet of SCHEMA; the file appears only complete (infoflow.parquet.writer)."""
    with parquet.writer(path, SCHEMA) as write_batch:
        write_batch({field.name: [row[field.name] for row in rows] for field in SCHEMA})


# --- scoring generated text ----------------------------------------------------------------------

ANSWER_CUE = re.compile(r"answer is", re.IGNORECASE)
NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")


def find_label(text, labels):
    """The first of `labels` standing as a word in `text`, lower-cased; None if there is none."""
    alternatives = "|".join(re.escape(label) for label in sorted(labels, key=len, reverse=True))
    match = re.search(rf"(?<![\w-])({alternatives})(?![\w-])", text, re.IGNORECASE)
    return match.group(1).lower() if match else None


def find_number(text, cue_tail):
    numbers_after_cue = NUMBER.findall(cue_tail) if cue_tail is not None else []
    found = numbers_after_cue[:1] or NUMBER.findall(text)[-1:]
    return format_number(to_number(found[0], "number")) if found else None


def extract_answer(text, answer_type, choices=None):
    """The normalised answer in a model's generated `text` (see the module docstring), or None."""
    cue = ANSWER_CUE.search(text)
    tail = text[cue.end():] if cue else None
    if answer_type == "number":
        return find_number(text, tail)
    labels = {"choice": choices, "yes_no": YES_NO}[answer_type]
    label = (tail is not None and find_label(tail, labels)) or find_label(text, labels)
    return YES_NO[label] if answer_type == "yes_no" and label else label


def is_correct(prediction_text, row):
    predicted = extract_answer(prediction_text, row["answer_type"], row.get("choices"))
    if predicted is None:
        return False
    if row["answer_type"] == "number":
        return abs(float(predicted) - float(row["answer"])) <= NUMBER_TOLERANCE
    return predicted == row["answer"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(ADAPTERS))
    parser.add_argument("--source", help="local file or folder, or hub id 'owner/name[:config]'")
    parser.add_argument("--split")
    parser.add_argument("--limit", type=int, help="keep at most this many rows, drawn at random")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --limit draw")
    parser.add_argument("--on-bad-rows", choices=ON_BAD_ROWS, default="error", help="a bad source record stops the job, naming file and row (error), or is left out and counted (skip)")
    parser.add_argument("--entries", help="instead of the above: a JSON list of {dataset, source, split[, limit, seed, on_bad_rows]}, concatenated")
    parser.add_argument("--split-name", help="the split column of every row (default: each entry's split), e.g. test_ood")
    parser.add_argument("--out", required=True, help="Parquet file to write")
    parser.add_argument("--summary", help="JSON file to write: rows read, skipped (by reason, with the first few), kept and written")
    args = parser.parse_args()
    if args.entries:
        entries = json.loads(args.entries)
    elif args.dataset and args.source and args.split:
        entries = [{"dataset": args.dataset, "source": args.source, "split": args.split, "limit": args.limit, "seed": args.seed}]
    else:
        parser.error("give --dataset, --source and --split, or --entries")
    if any(entry.get("limit") is not None and entry["limit"] < 1 for entry in entries):
        parser.error("--limit must be at least 1")
    read = [(entry["dataset"], entry["split"]) for entry in entries]
    if len(set(read)) < len(read):  # ids are '{dataset}-{split}-{row}': the rows would share them
        parser.error(f"entries read a data set split twice: {sorted({pair for pair in read if read.count(pair) > 1})}")
    cli.setup()
    count = RowCount()
    rows = []
    for entry in entries:
        kept = load(entry["dataset"], entry["source"], entry["split"], entry.get("on_bad_rows", args.on_bad_rows), count)
        part = sample(kept, entry.get("limit"), entry.get("seed", 0))
        log.info("%d rows of %s/%s", len(part), entry["dataset"], entry["split"])
        rows += part
    for reason, skipped in count.skipped.items():
        log.warning("%d rows skipped as %s; first: %s", skipped["rows"], reason, " | ".join(skipped["first"]))
    if args.split_name:
        rows = [{**row, "split": args.split_name} for row in rows]
    write(rows, args.out)
    if args.summary:
        write_json(args.summary, count.summary(len(rows)))
    log.info("%d rows written to %s", len(rows), args.out)


if __name__ == "__main__":
    cli.run(main)
