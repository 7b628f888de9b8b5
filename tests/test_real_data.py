import csv
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import run_module
from infoflow.world import public_data as rd
from infoflow.world.adapters import ADAPTERS, CLUTRR_RELATIONS
from infoflow.world.records import RowCount
from infoflow.world.scoring import extract_answer, is_correct
from infoflow.io import DataError

LEAD = "\n\nThe correct answer is"
WRITTEN_SCHEMA = pa.schema(
    [
        ("id", pa.string()), ("split", pa.string()), ("source", pa.string()), ("prompt", pa.string()),
        ("answer", pa.string()), ("answer_type", pa.string()), ("choices", pa.list_(pa.string())),
    ]
)
LETTERS = ["a", "b", "c", "d", "e"]
MATH = [  # LLM-Adapters' layout of AddSub, SingleEq, MultiArith, MAWPS and SVAMP
    {"instruction": "Sam had 9 balls and lost 2. How many are left?", "input": "", "output": "9 - 2 = 7", "answer": "7.0"},
    {"instruction": "Half of 5?", "input": "", "output": "2.5", "answer": "2.5"},
    {"instruction": "How many legs do 3 cats have?", "input": "", "output": "12", "answer": 12},
]
MATH_PROMPT = (
    "Please solve the following problem and answer with a number: Sam had 9 balls and lost 2. How many are left?"
    "\n\nAnswer format: number" + LEAD
)


def arc_record(question, texts, labels, key):
    return {"id": f"Mercury_{key}", "question": question, "choices": {"text": texts, "label": labels}, "answerKey": key}


# (case, data set, file layout, records in the public field layout, first prompt, answers)
CASES = [
    ("boolq", "boolq", "jsonl", [
        {"question": "is the sky blue", "passage": "The sky is blue.", "answer": True},
        {"question": "is fire cold", "passage": "Fire is hot.", "answer": False},
        {"question": "do cats bark", "passage": "Cats meow.", "answer": False},
    ], "Please answer the following question with true or false, question: is the sky blue?\n\nAnswer format: true/false" + LEAD,
     ["true", "false", "false"]),
    ("piqa", "piqa", "jsonl", [
        {"goal": "Dry wet hands", "sol1": "Use a towel.", "sol2": "Use water.", "label": 0},
        {"goal": "Cool soup", "sol1": "Heat it.", "sol2": "Wait.", "label": 1},
        {"goal": "Open a jar", "sol1": "Twist the lid.", "sol2": "Shake it.", "label": 0},
    ], "Please choose the correct solution to the question: Dry wet hands\n\nSolution1: Use a towel.\n\nSolution2: Use water."
       "\n\nAnswer format: solution1/solution2" + LEAD,
     ["solution1", "solution2", "solution1"]),
    ("siqa", "siqa", "jsonl", [
        {"context": "Tracy gave Bob a gift.", "question": "How would Bob feel?",
         "answerA": "grateful", "answerB": "angry", "answerC": "bored", "label": "1"},
        {"context": "Kai lost.", "question": "What will Kai do?", "answerA": "cheer", "answerB": "dance", "answerC": "practice",
         "label": "3"},
        {"context": "Ann ran.", "question": "Why?", "answerA": "late", "answerB": "bored", "answerC": "asleep", "label": "1"},
    ], "Please choose the correct answer to the question: Tracy gave Bob a gift. How would Bob feel?\n\nAnswer1: grateful"
       "\n\nAnswer2: angry\n\nAnswer3: bored\n\nAnswer format: answer1/answer2/answer3" + LEAD,
     ["answer1", "answer3", "answer1"]),
    ("hellaswag", "hellaswag", "jsonl", [
        {"ind": 4, "activity_label": "Baking", "ctx_a": "A man puts dough in the oven.", "ctx_b": "he",
         "ctx": "A man puts dough in the oven. He", "endings": ["waits.", "swims.", "flies.", "sings."],
         "source_id": "a", "split": "val", "split_type": "indomain", "label": "0"},
        {"ind": 5, "activity_label": "Running", "ctx_a": "", "ctx_b": "", "ctx": "She runs.", "endings": ["a", "b", "c", "d"],
         "source_id": "b", "split": "val", "split_type": "zeroshot", "label": "3"},
        {"ind": 6, "activity_label": "Diving", "ctx_a": "", "ctx_b": "", "ctx": "He dives.", "endings": ["a", "b", "c", "d"],
         "source_id": "c", "split": "val", "split_type": "indomain", "label": "2"},
    ], "Please choose the correct ending to complete the given sentence: Baking: A man puts dough in the oven. He\n\nEnding1: waits."
       "\n\nEnding2: swims.\n\nEnding3: flies.\n\nEnding4: sings.\n\nAnswer format: ending1/ending2/ending3/ending4" + LEAD,
     ["ending1", "ending4", "ending3"]),
    ("winogrande", "winogrande", "jsonl", [
        {"sentence": "The cup fit in the bag because _ was small.", "option1": "the cup", "option2": "the bag", "answer": "1"},
        {"sentence": "The cup did not fit in the bag because _ was small.", "option1": "the cup", "option2": "the bag", "answer": "2"},
        {"sentence": "Ann thanked Sue because _ helped.", "option1": "Ann", "option2": "Sue", "answer": "2"},
    ], "Please choose the correct answer to fill in the blank to complete the given sentence: The cup fit in the bag because _ was small."
       "\n\nOption1: the cup\n\nOption2: the bag\n\nAnswer format: option1/option2" + LEAD,
     ["option1", "option2", "option2"]),
    ("arc_easy", "arc_easy", "jsonl", [
        arc_record("Which is a gas?", ["ice", "steam", "rock"], ["A", "B", "C"], "B"),
        arc_record("Which is alive?", ["a tree", "a stone", "a cup", "sand"], ["1", "2", "3", "4"], "1"),
        arc_record("Which is hot?", ["snow", "ice", "fire", "rain"], ["A", "B", "C", "D"], "C"),
    ], "Please choose the correct answer to the question: Which is a gas?\n\nAnswer1: ice\n\nAnswer2: steam\n\nAnswer3: rock"
       "\n\nAnswer format: answer1/answer2/answer3" + LEAD,
     ["answer2", "answer1", "answer3"]),
    ("arc_challenge", "arc_challenge", "parquet", [
        arc_record("What makes tides?", ["wind", "the moon", "fish", "rain"], ["A", "B", "C", "D"], "B"),
        arc_record("What melts ice?", ["heat", "cold", "dark", "salt water", "sound"], ["A", "B", "C", "D", "E"], "E"),
        arc_record("What is 2+2?", ["3", "4", "5", "6"], ["1", "2", "3", "4"], "2"),
    ], "Please choose the correct answer to the question: What makes tides?\n\nAnswer1: wind\n\nAnswer2: the moon\n\nAnswer3: fish"
       "\n\nAnswer4: rain\n\nAnswer format: answer1/answer2/answer3/answer4" + LEAD,
     ["answer2", "answer5", "answer2"]),
    ("openbookqa", "openbookqa", "jsonl", [
        {"id": "7-980", "question_stem": "The sun is responsible for",
         "choices": {"text": ["rain", "night", "snow", "plants growing"], "label": ["A", "B", "C", "D"]}, "answerKey": "D"},
        {"id": "7-981", "question_stem": "Fish live in",
         "choices": {"text": ["water", "trees", "sand", "air"], "label": ["A", "B", "C", "D"]}, "answerKey": "A"},
        {"id": "7-982", "question_stem": "Ice is",
         "choices": {"text": ["hot", "solid", "gas", "loud"], "label": ["A", "B", "C", "D"]}, "answerKey": "B"},
    ], "Please choose the correct answer to the question: The sun is responsible for\n\nAnswer1: rain\n\nAnswer2: night\n\nAnswer3: snow"
       "\n\nAnswer4: plants growing\n\nAnswer format: answer1/answer2/answer3/answer4" + LEAD,
     ["answer4", "answer1", "answer2"]),
    ("ecqa", "ecqa", "csv", [
        {"q_no": 1, "q_concept": "book", "q_text": "Where do you keep books?",
         "q_op1": "shelf", "q_op2": "oven", "q_op3": "pool", "q_op4": "sky", "q_op5": "sock",
         "q_ans": "shelf", "taskA_pos": "Books go on shelves.", "taskA_neg": "", "taskB": "Books are kept on a shelf."},
        {"q_no": 2, "q_concept": "cold", "q_text": "What is cold?",
         "q_op1": "sun", "q_op2": "fire", "q_op3": "ice", "q_op4": "tea", "q_op5": "oven",
         "q_ans": "ice", "taskA_pos": "", "taskA_neg": "", "taskB": ""},
        {"q_no": 3, "q_concept": "pet", "q_text": "Which pet barks?",
         "q_op1": "cat", "q_op2": "fish", "q_op3": "bird", "q_op4": "snail", "q_op5": "dog",
         "q_ans": "dog", "taskA_pos": "", "taskA_neg": "", "taskB": ""},
    ], "Please choose the correct answer to the question: Where do you keep books?\n\nAnswer1: shelf\n\nAnswer2: oven\n\nAnswer3: pool"
       "\n\nAnswer4: sky\n\nAnswer5: sock\n\nAnswer format: answer1/answer2/answer3/answer4/answer5" + LEAD,
     ["answer1", "answer3", "answer5"]),
    ("gsm8k", "gsm8k", "jsonl", [
        {"question": "Tom has 3 apples and buys 4. How many does he have?", "answer": "He has 3 + 4 = <<3+4=7>>7 apples.\n#### 7"},
        {"question": "What is 1000 + 234?", "answer": "1000 + 234 = 1234\n#### 1,234"},
        {"question": "What is 2 - 7?", "answer": "2 - 7 = -5\n#### -5"},
    ], "Please solve the following problem and answer with a number: Tom has 3 apples and buys 4. How many does he have?"
       "\n\nAnswer format: number" + LEAD,
     ["7", "1234", "-5"]),
    ("addsub", "addsub", "folder", MATH, MATH_PROMPT, ["7", "2.5", "12"]),
    ("singleeq", "singleeq", "jsonl", MATH, MATH_PROMPT, ["7", "2.5", "12"]),
    ("multiarith", "multiarith", "jsonl", MATH, MATH_PROMPT, ["7", "2.5", "12"]),
    ("mawps", "mawps", "jsonl", MATH, MATH_PROMPT, ["7", "2.5", "12"]),
    ("svamp_llm_adapters", "svamp", "jsonl", MATH, MATH_PROMPT, ["7", "2.5", "12"]),
    ("svamp_hub", "svamp", "jsonl", [
        {"ID": "chal-1", "Body": "Each pack costs 76 dollars. There is a discount of 25 dollars on each pack.",
         "Question": "How much do you pay for a pack?", "Equation": "( 76.0 - 25.0 )", "Answer": 51.0, "Type": "Subtraction"},
        {"ID": "chal-2", "Body": "There are 4 boxes of 5 pens.", "Question": "How many pens are there?",
         "Equation": "( 4.0 * 5.0 )", "Answer": 20.0, "Type": "Multiplication"},
        {"ID": "chal-3", "Body": "A rope of 3 m is cut in 2 equal parts.", "Question": "How long is a part?",
         "Equation": "( 3.0 / 2.0 )", "Answer": 1.5, "Type": "Common-Division"},
    ], "Please solve the following problem and answer with a number: Each pack costs 76 dollars. There is a discount of 25 dollars"
       " on each pack. How much do you pay for a pack?\n\nAnswer format: number" + LEAD,
     ["51", "20", "1.5"]),
    ("aqua", "aqua", "jsonl", [
        {"question": "What is 10% of 210?", "options": ["A)21", "B)21.5", "C)22", "D)20", "E)25"],
         "rationale": "210 / 10 = 21", "correct": "A"},
        {"question": "What is 3 * 3?", "options": ["A)6", "B)8", "C)9", "D)12", "E)3"], "rationale": "9", "correct": "C"},
        {"question": "What is 5 - 7?", "options": ["A)2", "B)-2", "C)12", "D)0", "E)-12"], "rationale": "-2", "correct": "B"},
    ], "Please choose the correct answer to the question: What is 10% of 210?\n\nA)21\n\nB)21.5\n\nC)22\n\nD)20\n\nE)25"
       "\n\nAnswer format: a/b/c/d/e" + LEAD,
     ["a", "c", "b"]),
    ("clutrr", "clutrr", "jsonl", [
        {"id": "6c43ffc7",
         "story": "[Gabrielle] loves when her daughter, [Lisa], comes to visit. Sometimes [Lisa] brings along her son, [Joe].",
         "query": "('Gabrielle', 'Joe')", "target": 10, "target_text": "grandson", "task_name": "task_1.2"},
        {"id": "8ec04584", "story": "[Dorothy] and her husband, [James], went for a walk. [Dan], [James]'s son, tagged along.",
         "query": "('Dorothy', 'Dan')", "target": 15, "target_text": "son", "task_name": "task_1.2"},
        {"id": "bc1c31a8",
         "story": "[Guillermina] wanted to visit her grandfather [Jason], but she had to help her sister [Angela] with chores.",
         "query": "('Angela', 'Jason')", "target": 2, "target_text": "grandfather", "task_name": "task_1.2"},
    ], "Please choose the correct relation to complete the sentence \"Joe is Gabrielle's ...\" for the story: Gabrielle loves when her"
       " daughter, Lisa, comes to visit. Sometimes Lisa brings along her son, Joe.\n\nAnswer format: aunt/son-in-law/grandfather/brother/"
       "sister/father/mother/grandmother/uncle/daughter-in-law/grandson/granddaughter/father-in-law/mother-in-law/nephew/son/daughter/"
       "niece/husband/wife/sister-in-law" + LEAD,
     ["grandson", "son", "grandfather"]),
]
ANSWER_TYPE = {"boolq": "yes_no", **dict.fromkeys(["gsm8k", "addsub", "singleeq", "multiarith", "mawps", "svamp"], "number")}


def write_records(folder, layout, records):
    """The records as a source of `layout`: a jsonl, parquet or csv file, or a folder holding test.json."""
    if layout == "jsonl":
        path = folder / "test.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
    elif layout == "parquet":
        path = folder / "test.parquet"
        pq.write_table(pa.Table.from_pylist(records), path)
    elif layout == "csv":
        path = folder / "test.csv"
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
    else:  # LLM-Adapters ships one JSON array per split: dataset/<name>/test.json
        path = folder / "addsub"
        path.mkdir()
        (path / "test.json").write_text(json.dumps(records))
    return path


def test_every_data_set_has_a_case():
    assert {case[1] for case in CASES} == set(ADAPTERS)


@pytest.mark.parametrize("case, dataset, layout, records, first_prompt, answers", CASES, ids=[c[0] for c in CASES])
def test_adapter_reads_the_public_layout(tmp_path, case, dataset, layout, records, first_prompt, answers):
    rows = rd.load(dataset, str(write_records(tmp_path, layout, records)), "test")
    assert len(rows) == len(records)
    assert rows[0]["prompt"] == first_prompt
    assert [r["answer"] for r in rows] == answers
    answer_type = ANSWER_TYPE.get(dataset, "choice")
    assert all(r["answer_type"] == answer_type and r["split"] == "test" and r["source"] == dataset for r in rows)
    assert all((r["answer"] in r["choices"]) if answer_type == "choice" else r["choices"] is None for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)

    out = tmp_path / "out" / "rows.parquet"
    rd.write(rows, out)
    table = pq.read_table(out)
    assert table.schema.equals(WRITTEN_SCHEMA)
    assert table.to_pylist() == rows


def test_cli_writes_a_seeded_sample(tmp_path):
    source = write_records(tmp_path, "jsonl", CASES[0][3])
    out = tmp_path / "data" / "boolq" / "test.parquet"
    args = ["--dataset", "boolq", "--source", source, "--split", "test", "--out", out, "--limit", 2, "--seed", 3]
    run_module("world.public_data", *args)
    first = pq.read_table(out)
    assert first.schema.equals(WRITTEN_SCHEMA) and first.num_rows == 2
    ids = first.column("id").to_pylist()
    assert ids == sorted(ids) and set(ids) < {"boolq-test-00000", "boolq-test-00001", "boolq-test-00002"}
    run_module("world.public_data", *args)
    assert pq.read_table(out).equals(first)


def test_cli_reports_an_unreachable_hub_in_one_line(tmp_path):
    out = tmp_path / "arc.parquet"
    source = "allenai/ai2_arc:ARC-Challenge"
    result = run_module("world.public_data", "--dataset", "arc_challenge", "--source", source, "--split", "test", "--out", out, check=False)
    assert result.returncode == 1 and not out.exists()
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("infoflow: allenai/ai2_arc:ARC-Challenge: ") and "local path" in last and "network" in last


def test_offline_hub_id_raises_data_error():
    with pytest.raises(DataError, match=r"google/boolq: .*give a local path .*turn the network on") as error:
        rd.load("boolq", "google/boolq", "validation")
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "dataset, records, message",
    [
        ("boolq", [{"question": "a", "answer": True}, {"answer": False}], r"test\.jsonl, row 2: missing field 'question'"),
        ("piqa", [{"goal": "a", "sol1": "b", "label": 0}], r"test\.jsonl, row 1: missing field 'sol2'"),
        ("arc_easy", [arc_record("q", ["x", "y"], ["A", "B"], "C")], r"row 1: field 'answerKey' is 'C', not one of \['A', 'B'\]"),
        ("winogrande", [{"sentence": "_", "option1": "a", "option2": "b", "answer": "3"}], r"row 1: field 'answer' is '3', not one of"),
        ("gsm8k", [{"question": "q", "answer": "no marker"}], r"row 1: field 'answer' has no '#### <number>' line"),
        ("clutrr", [{"story": "s", "query": "Alice", "target_text": "son"}], r"row 1: field 'query' is 'Alice', not a pair of names"),
    ],
)
def test_bad_record_names_file_row_and_field(tmp_path, dataset, records, message):
    with pytest.raises(DataError, match=message):
        rd.load(dataset, str(write_records(tmp_path, "jsonl", records)), "test")


def test_bad_local_sources(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "folder").mkdir()
    for source, message in [
        (tmp_path / "missing.jsonl", "no such file"),
        (tmp_path / "empty.jsonl", "no records"),
        (tmp_path / "folder", "no file for split 'test'"),
    ]:
        with pytest.raises(DataError, match=message):
            rd.load("boolq", str(source), "test")


def test_failed_write_leaves_no_file(tmp_path):
    rows = [{"id": "x", "split": "test", "source": "boolq", "prompt": 3, "answer": "true", "answer_type": "yes_no", "choices": None}]
    with pytest.raises(pa.ArrowException):
        rd.write(rows, tmp_path / "rows.parquet")
    assert list(tmp_path.iterdir()) == []


YES = {"question": "is the sky blue", "answer": True}
SUM = {"question": "What is 2 + 2?", "answer": "2 + 2 = 4\n#### 4"}
TOTAL = {"instruction": "What is 2 + 2?", "input": "", "output": "4", "answer": "4"}
BLUE = {"sentence": "The sky is _.", "option1": "blue", "option2": "green", "answer": "1"}
TEN = {"question": "What is 10% of 210?", "options": ["A)21", "B)22"], "correct": "A"}


def jsonl(*rows):
    """A JSON-lines file's bytes: each row a record, or bytes standing as the line itself."""
    return b"".join((row if isinstance(row, bytes) else json.dumps(row).encode()) + b"\n" for row in rows)


def parquet_bytes(records):
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(records), sink)
    return sink.getvalue().to_pybytes()


# (case, data set, file name, file bytes with a bad row 2 between two good rows, reason, problem)
BAD_ROWS = [
    ("missing_field", "boolq", "test.jsonl", jsonl(YES, {"answer": False}, YES), "missing_field", r"missing field 'question'"),
    ("null_field", "boolq", "test.jsonl", jsonl(YES, {"question": None, "answer": False}, YES),
     "missing_field", r"missing field 'question'"),
    ("null_in_parquet", "boolq", "test.parquet", parquet_bytes([YES, {"question": None, "answer": False}, YES]),
     "missing_field", r"missing field 'question'"),
    ("empty_answer", "gsm8k", "test.jsonl", jsonl(SUM, {"question": "What is 1 + 1?", "answer": " "}, SUM),
     "empty_field", r"field 'answer' is empty"),
    ("empty_answer_csv", "boolq", "test.csv", b"question,answer\nis it,true\nis it,\nis it,false\n", "empty_field",
     r"field 'answer' is empty"),
    ("empty_option", "winogrande", "test.jsonl", jsonl(BLUE, {**BLUE, "option2": ""}, BLUE), "empty_field",
     r"field 'option2' is empty"),
    ("number_for_text", "boolq", "test.jsonl", jsonl(YES, {"question": 5, "answer": False}, YES), "wrong_type",
     r"field 'question' is int 5, not text"),
    ("text_for_options", "aqua", "test.jsonl", jsonl(TEN, {**TEN, "options": "A)21 B)22"}, TEN), "wrong_type",
     r"field 'options' is 'A\)21 B\)22', not a list of texts"),
    ("answer_not_a_number", "addsub", "test.jsonl", jsonl(TOTAL, {**TOTAL, "answer": "four"}, TOTAL), "bad_value",
     r"field 'answer' is 'four', not a number"),
    ("not_json", "boolq", "test.jsonl", jsonl(YES, b'{"question": "is it", "answer": fal', YES), "malformed",
     r"not valid JSON \(Expecting value\)"),
    ("not_an_object", "boolq", "test.jsonl", jsonl(YES, b'["is it", true]', YES), "malformed", r"not a JSON object"),
    ("array_element_not_an_object", "addsub", "test.json", json.dumps([TOTAL, "4", TOTAL]).encode(), "malformed",
     r"not a JSON object"),
    ("csv_fields", "boolq", "test.csv", b"question,answer\nis it,true\nis it,false,maybe\nis it,false\n", "malformed",
     r"3 fields, but the header has 2"),
    ("latin1_jsonl", "boolq", "test.jsonl", jsonl(YES, '{"question": "caf\xe9 au lait", "answer": true}'.encode("latin-1"), YES),
     "not_utf8", r"not UTF-8 text \(byte 0xe9; save the file as UTF-8\)"),
    ("latin1_csv", "boolq", "test.csv", "question,answer\nis it,true\ncaf\xe9?,true\nis it,false\n".encode("latin-1"),
     "not_utf8", r"not UTF-8 text \(byte 0xe9"),
    ("latin1_json_array", "addsub", "test.json",
     json.dumps([TOTAL, {**TOTAL, "instruction": "caf\xe9?"}, TOTAL], ensure_ascii=False).encode("latin-1"),
     "not_utf8", r"not UTF-8 text \(byte 0xe9"),
]


def assert_row_2_is_an_error_or_skipped_and_counted(path, load, reason, problem, kept_ids):
    """load(on_bad_rows, count) of `path`, whose row 2 is bad: an error naming file and row, or with
    skip the other rows, `kept_ids`, and the bad one counted."""
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}, row 2: {problem}") as error:
        load("error", None)
    assert "\n" not in str(error.value)

    count = RowCount()
    rows = load("skip", count)
    assert [row["id"] for row in rows] == kept_ids
    summary = count.summary(written=2)
    first = summary["skipped"][reason].pop("first")
    assert len(first) == 1 and re.match(rf"{re.escape(str(path))}, row 2: {problem}", first[0])
    assert summary == {"rows_read": 3, "rows_skipped": 1, "rows_kept": 2, "rows_written": 2, "skipped": {reason: {"rows": 1}}}


@pytest.mark.parametrize("case, dataset, name, content, reason, problem", BAD_ROWS, ids=[c[0] for c in BAD_ROWS])
def test_bad_row_is_an_error_naming_file_and_row_or_is_skipped_and_counted(tmp_path, case, dataset, name, content, reason,
                                                                          problem):
    path = tmp_path / name
    path.write_bytes(content)
    assert_row_2_is_an_error_or_skipped_and_counted(
        path, lambda on_bad_rows, count: rd.load(dataset, str(path), "test", on_bad_rows, count), reason, problem,
        [f"{dataset}-test-00000", f"{dataset}-test-00002"],  # ids keep source positions
    )


def test_blank_lines_are_no_rows_and_a_csv_may_start_with_a_byte_order_mark(tmp_path):
    (tmp_path / "test.jsonl").write_bytes(jsonl(YES) + b"\n" + jsonl(YES) + b"\n")
    assert [row["id"] for row in rd.load("boolq", str(tmp_path / "test.jsonl"), "test")] == ["boolq-test-00000", "boolq-test-00001"]
    (tmp_path / "test.csv").write_bytes(b"\xef\xbb\xbfquestion,answer\nis it,true\n\n")
    assert rd.load("boolq", str(tmp_path / "test.csv"), "test")[0]["answer"] == "true"


def test_skip_counts_every_reason_and_quotes_the_first_few(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_bytes(jsonl(YES, *[{"answer": True}] * 7, {"question": 3, "answer": True}))
    count = RowCount()
    assert len(rd.load("boolq", str(path), "test", "skip", count)) == 1
    assert count.skipped["missing_field"]["rows"] == 7 and count.skipped["wrong_type"]["rows"] == 1
    assert count.skipped["missing_field"]["first"] == [f"{path}, row {row}: missing field 'question'" for row in range(2, 7)]


def test_a_source_of_bad_rows_only_is_an_error_even_with_skip(tmp_path):
    path = tmp_path / "test.jsonl"
    path.write_bytes(jsonl({"answer": True}, {"answer": False}))
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}: no records for split 'test' \(2 bad rows skipped\)$"):
        rd.load("boolq", str(path), "test", "skip")


def truncated_parquet(path):
    path.write_bytes(parquet_bytes([YES] * 20)[:-30])


@pytest.mark.parametrize(
    "name, write, message",
    [
        ("test.parquet", truncated_parquet, r"not a readable Parquet file"),
        ("test.json", lambda path: path.write_text('[{"instruction": "a", "answer": "1"},\n {"instruction": '),
         r"not valid JSON \(line 2: Expecting value\)"),
        ("test.csv", lambda path: path.write_text("question,answer\n" + "x" * 200_000 + ",true\n"),
         r", line 2: not valid CSV \(field larger than field limit"),
        ("missing.jsonl", lambda path: None, r"no such file"),
    ],
    ids=["truncated_parquet", "broken_json_array", "csv_field_over_the_limit", "missing_file"],
)
@pytest.mark.parametrize("on_bad_rows", rd.ON_BAD_ROWS)
def test_unreadable_file_is_an_error_even_with_skip(tmp_path, name, write, message, on_bad_rows):
    path = tmp_path / name
    write(path)
    with pytest.raises(DataError, match=rf"^{re.escape(str(path))}.*{message}") as error:
        rd.load("addsub" if name.endswith(".json") else "boolq", str(path), "test", on_bad_rows)
    assert "\n" not in str(error.value)


def test_cli_skips_bad_rows_per_entry_and_writes_a_summary(tmp_path):
    dirty, clean = tmp_path / "dirty.jsonl", tmp_path / "clean.jsonl"
    dirty.write_bytes(jsonl(YES, {"answer": False}, b"not json", YES))
    clean.write_bytes(jsonl(SUM, SUM))
    entries = [
        {"dataset": "boolq", "source": str(dirty), "split": "test", "on_bad_rows": "skip"},
        {"dataset": "gsm8k", "source": str(clean), "split": "test"},
    ]
    out, summary = tmp_path / "data" / "test_id.parquet", tmp_path / "data" / "test_id.summary.json"
    result = run_module("world.public_data", "--entries", json.dumps(entries), "--split-name", "test_id", "--out", out, "--summary", summary)
    assert pq.read_table(out).column("id").to_pylist() == ["boolq-test-00000", "boolq-test-00003", "gsm8k-test-00000", "gsm8k-test-00001"]
    assert json.loads(summary.read_text()) == {
        "rows_read": 6, "rows_skipped": 2, "rows_kept": 4, "rows_written": 4,
        "skipped": {
            "missing_field": {"rows": 1, "first": [f"{dirty}, row 2: missing field 'question'"]},
            "malformed": {"rows": 1, "first": [f"{dirty}, row 3: not valid JSON (Expecting value)"]},
        },
    }
    assert f"{dirty}: 2 bad rows skipped" in result.stderr
    assert f"1 rows skipped as missing_field; first: {dirty}, row 2: missing field 'question'" in result.stderr

    entries[1]["source"] = str(dirty)  # the default, on_bad_rows: error, holds for this entry
    entries[1]["dataset"] = "boolq"
    entries[1]["split"] = "train"
    out.unlink()
    summary.unlink()
    result = run_module("world.public_data", "--entries", json.dumps(entries), "--out", out, "--summary", summary, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"infoflow: {dirty}, row 2: missing field 'question'"
    assert list((tmp_path / "data").iterdir()) == []  # neither file, nor a temporary one


def test_cli_refuses_entries_that_would_share_ids(tmp_path):
    source = write_records(tmp_path, "jsonl", CASES[0][3])
    entry = {"dataset": "boolq", "source": str(source), "split": "test"}
    result = run_module("world.public_data", "--entries", json.dumps([entry, {**entry, "limit": 1}]), "--out", tmp_path / "o.parquet",
                        check=False)
    assert result.returncode == 2 and "entries read a data set split twice: [('boolq', 'test')]" in result.stderr
    assert not (tmp_path / "o.parquet").exists()


QUIZ = [
    {"qid": "q7", "topic": "maths", "question": "Is 7 prime?", "label": "Yes"},
    {"qid": "q8", "topic": "maths", "question": "Is 8 prime?", "label": "no"},
    {"qid": "q1", "topic": "art", "question": "Is blue a colour?", "label": "YES"},
]
QUIZ_ENTRY = {"dataset": "generic", "split": "test", "prompt": "[{topic}] Q: {question} {{yes/no}}\nA:", "answer": "label",
              "answer_type": "choice", "labels": ["yes", "no"], "id": "qid"}


@pytest.mark.parametrize("layout", ["jsonl", "csv", "parquet"])
def test_generic_entry_fills_its_template_from_each_format(tmp_path, layout):
    entry = {**QUIZ_ENTRY, "source": str(write_records(tmp_path, layout, QUIZ))}
    rows = rd.load("quiz", entry["source"], "test", generic=entry)
    assert rows[0] == {"id": "quiz-test-q7", "split": "test", "source": "quiz", "prompt": "[maths] Q: Is 7 prime? {yes/no}\nA:",
                       "answer": "yes", "answer_type": "choice", "choices": ["yes", "no"]}
    assert [(r["id"], r["answer"]) for r in rows] == [("quiz-test-q7", "yes"), ("quiz-test-q8", "no"), ("quiz-test-q1", "yes")]
    rd.write(rows, tmp_path / "rows.parquet")
    assert pq.read_table(tmp_path / "rows.parquet").schema.equals(WRITTEN_SCHEMA)


@pytest.mark.parametrize(
    "answer_type, labels, values, answers, row_type",
    [
        ("exact", None, ["Paris", " New  York ", 1984], ["Paris", "New  York", "1984"], "exact"),
        ("number", None, ["1,234", 2.5, "-3.0"], ["1234", "2.5", "-3"], "number"),
        ("true_false", None, [True, "no", " Yes"], ["true", "false", "true"], "yes_no"),
        ("choice", ["Positive", "negative"], ["positive", "NEGATIVE", "Positive"], ["positive", "negative", "positive"], "choice"),
    ],
)
def test_generic_answer_types(tmp_path, answer_type, labels, values, answers, row_type):
    entry = {"dataset": "generic", "split": "test", "prompt": "{text}", "answer": "gold", "answer_type": answer_type,
             "labels": labels, "source": str(write_records(tmp_path, "jsonl", [{"text": "t", "gold": value} for value in values]))}
    rows = rd.load("mine", entry["source"], "test", generic={key: value for key, value in entry.items() if value is not None})
    assert [r["answer"] for r in rows] == answers
    assert all(r["answer_type"] == row_type and r["choices"] == ([label.lower() for label in labels] if labels else None) for r in rows)
    assert [r["id"] for r in rows] == ["mine-test-00000", "mine-test-00001", "mine-test-00002"]


SUM_ROW = {"qid": "a", "question": "1 + 1?", "answer": "2"}
GENERIC_BAD_ROWS = [  # (case, file name, bytes with a bad row 2, the entry's answer_type, reason, problem)
    ("template_field_missing", "t.jsonl", jsonl(SUM_ROW, {"qid": "b", "answer": "3"}, {**SUM_ROW, "qid": "c"}), "number",
     "missing_field", r"missing field 'question'"),
    ("empty_field_csv", "t.csv", b"qid,question,answer\na,1 + 1?,2\nb, ,3\nc,2 + 2?,4\n", "number", "empty_field",
     r"field 'question' is empty"),
    ("list_in_template", "t.jsonl", jsonl(SUM_ROW, {**SUM_ROW, "qid": "b", "question": ["1 + 1?"]}, {**SUM_ROW, "qid": "c"}), "number",
     "wrong_type", r"field 'question' is list \['1 \+ 1\?'\], not text or a number"),
    ("not_a_number_parquet", "t.parquet", parquet_bytes([SUM_ROW, {**SUM_ROW, "qid": "b", "answer": "four"}, {**SUM_ROW, "qid": "c"}]),
     "number", "bad_value", r"field 'answer' is 'four', not a number"),
    ("label_not_in_set_csv", "t.csv", b"qid,question,answer\na,Is it?,yes\nb,Is it?,maybe\nc,Is it?,no\n", "choice", "bad_value",
     r"field 'answer' is 'maybe', not one of \['yes', 'no'\]"),
    ("not_true_or_false", "t.jsonl", jsonl({**SUM_ROW, "answer": True}, {**SUM_ROW, "qid": "b", "answer": "maybe"},
                                           {**SUM_ROW, "qid": "c", "answer": "no"}), "true_false",
     "bad_value", r"field 'answer' is 'maybe', not one of \['false', 'true', 'no', 'yes'\]"),
    ("exact_answer_with_a_sentence_end", "t.jsonl", jsonl(SUM_ROW, {**SUM_ROW, "qid": "b", "answer": "U.S.A."}, {**SUM_ROW, "qid": "c"}),
     "exact", "bad_value", r"field 'answer' is 'U\.S\.A\.'; an exact answer is scored up to its first '\.' or line break"),
    ("id_twice", "t.jsonl", jsonl(SUM_ROW, SUM_ROW, {**SUM_ROW, "qid": "c"}), "number", "bad_value",
     r"field 'qid' is 'a', as in .*t\.jsonl, row 1$"),
]


@pytest.mark.parametrize("case, name, content, answer_type, reason, problem", GENERIC_BAD_ROWS, ids=[c[0] for c in GENERIC_BAD_ROWS])
def test_generic_bad_row_is_an_error_naming_file_and_row_or_is_skipped_and_counted(tmp_path, case, name, content, answer_type, reason,
                                                                                  problem):
    path = tmp_path / name
    path.write_bytes(content)
    entry = {"dataset": "generic", "source": str(path), "split": "test", "prompt": "Q: {question}\nA:", "answer": "answer",
             "answer_type": answer_type, "id": "qid", **({"labels": ["yes", "no"]} if answer_type == "choice" else {})}
    assert_row_2_is_an_error_or_skipped_and_counted(
        path, lambda on_bad_rows, count: rd.load("t", str(path), "test", on_bad_rows, count, entry), reason, problem,
        ["t-test-a", "t-test-c"],
    )


def test_cli_reads_generic_entries_and_refuses_an_inconsistent_one(tmp_path):
    quiz = write_records(tmp_path, "jsonl", QUIZ[:2] + [{**QUIZ[2], "label": "perhaps"}])
    sums = tmp_path / "sums.csv"
    sums.write_text("question,answer\n1 + 1?,2\n2 + 2?,4\n")
    entries = [
        {**QUIZ_ENTRY, "source": str(quiz), "name": "quiz", "on_bad_rows": "skip"},
        {"dataset": "generic", "source": str(sums), "split": "test", "prompt": "{question}", "answer": "answer", "answer_type": "number"},
    ]
    out, summary = tmp_path / "data" / "test_id.parquet", tmp_path / "data" / "test_id.summary.json"
    run_module("world.public_data", "--entries", json.dumps(entries), "--split-name", "test_id", "--out", out, "--summary", summary)
    table = pq.read_table(out)
    assert table.schema.equals(WRITTEN_SCHEMA)
    assert table.column("id").to_pylist() == ["quiz-test-q7", "quiz-test-q8", "sums-test-00000", "sums-test-00001"]
    assert table.column("source").to_pylist() == ["quiz", "quiz", "sums", "sums"]
    assert json.loads(summary.read_text())["skipped"] == {
        "bad_value": {"rows": 1, "first": [f"{quiz}, row 3: field 'label' is 'perhaps', not one of ['yes', 'no']"]}}

    del entries[0]["labels"]
    result = run_module("world.public_data", "--entries", json.dumps(entries), "--out", tmp_path / "o.parquet", check=False)
    assert result.returncode == 2 and "entry 0: answer_type: choice needs labels" in result.stderr
    assert not (tmp_path / "o.parquet").exists()


ANSWERS = ["answer1", "answer2", "answer3"]


@pytest.mark.parametrize(
    "text, answer_type, choices, expected",
    [
        ("answer1", "choice", ANSWERS, "answer1"),
        (" Answer1.", "choice", ANSWERS, "answer1"),
        ("the correct answer is answer2 because answer1 is wrong", "choice", ANSWERS, "answer2"),
        (" answer3\n\nQuestion: ... answer1", "choice", ANSWERS, "answer3"),
        ("answer10", "choice", ANSWERS, None),
        ("(B)", "choice", LETTERS, "b"),
        ("B) 21.5", "choice", LETTERS, "b"),
        ("The answer is B.", "choice", LETTERS, "b"),
        (" c", "choice", LETTERS, "c"),
        (" grandson", "choice", CLUTRR_RELATIONS, "grandson"),
        (" son-in-law, since", "choice", CLUTRR_RELATIONS, "son-in-law"),
        ("I do not know", "choice", ANSWERS, None),
        (" True", "yes_no", None, "true"),
        (" false.", "yes_no", None, "false"),
        (" yes, it is", "yes_no", None, "true"),
        ("No.", "yes_no", None, "false"),
        ("maybe", "yes_no", None, None),
        ("The answer is 42.", "number", None, "42"),
        (" 42.", "number", None, "42"),
        ("1,234 apples", "number", None, "1234"),
        ("It costs $42 in all", "number", None, "42"),
        (" -3.5 degrees", "number", None, "-3.5"),
        ("3 + 5 = 8, so 8 apples", "number", None, "8"),
        ("The answer is 12, not 15", "number", None, "12"),
        ("no idea", "number", None, None),
        (" New  York. It is big", "exact", None, "new york"),
        ("\nParis", "exact", None, None),
    ],
)
def test_extract_answer(text, answer_type, choices, expected):
    assert extract_answer(text, answer_type, choices) == expected


@pytest.mark.parametrize(
    "text, row, correct",
    [
        (" 7.00001", {"answer": "7", "answer_type": "number", "choices": None}, True),
        (" 7.01", {"answer": "7", "answer_type": "number", "choices": None}, False),
        (" 1,234.", {"answer": "1234", "answer_type": "number", "choices": None}, True),
        (" nothing", {"answer": "7", "answer_type": "number", "choices": None}, False),
        (" answer2", {"answer": "answer2", "answer_type": "choice", "choices": ANSWERS}, True),
        (" answer1", {"answer": "answer2", "answer_type": "choice", "choices": ANSWERS}, False),
        (" no", {"answer": "false", "answer_type": "yes_no", "choices": None}, True),
        (" new york.", {"answer": "New  York", "answer_type": "exact", "choices": None}, True),
        (" New York City", {"answer": "New York", "answer_type": "exact", "choices": None}, False),
        ("", {"answer": "Paris", "answer_type": "exact", "choices": None}, False),
    ],
)
def test_is_correct(text, row, correct):
    assert is_correct(text, row) is correct
