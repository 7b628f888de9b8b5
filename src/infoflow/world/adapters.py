r"""The adapters of the public data sets: one record in a data set's public field layout -> one row
of infoflow.world.public_data's schema (without id, split, source).

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
  - generic (any local file or hub id; the entry names the fields): the prompt is the entry's template
    with each {field} replaced by the record's field; the answer field is read as answer_type exact
    (scored up to its first '.' or line break), choice (one of `labels`), number or true_false
    (true/false/yes/no, scored as yes_no); an `id` field, if named, gives the ids (each once).
"""

import ast
import string
from pathlib import Path

from infoflow.world.records import BadRow, Record
from infoflow.world.scoring import ANSWER_END, format_number, to_number

ANSWER_LEAD = "\n\nThe correct answer is"
# The relation words of CLUTRR, in the order of its integer `target` on the hub.
CLUTRR_RELATIONS = (
    "aunt", "son-in-law", "grandfather", "brother", "sister", "father", "mother", "grandmother", "uncle",
    "daughter-in-law", "grandson", "granddaughter", "father-in-law", "mother-in-law", "nephew", "son",
    "daughter", "niece", "husband", "wife", "sister-in-law",
)


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


# --- generic entries: a local file or hub id whose fields the entry names ------------------------

GENERIC_KEYS = ("name", "prompt", "answer", "answer_type", "labels", "id")
# A generic entry's answer_type -> the row's; true_false is scored as boolq's yes_no.
GENERIC_ANSWER_TYPES = {"exact": "exact", "choice": "choice", "number": "number", "true_false": "yes_no"}


def entry_name(entry):
    """The name a data set entry's rows carry in `source` and their ids: the data set's, or a generic
    entry's `name`, by default its source's file or folder name without extension."""
    if entry["dataset"] != "generic":
        return entry["dataset"]
    return entry.get("name") or Path(entry["source"]).stem


def placeholders(template):
    """(literal text, field name or None, conversion, format spec) of each piece of a prompt
    template, as str.format reads it ('{{' and '}}' are braces); ValueError if it cannot."""
    return list(string.Formatter().parse(template))


def generic_problem(entry):
    """(key, problem) of the first thing wrong with a data set entry's generic keys, or None: checked
    by the config check and by the command, before any row is read."""
    if entry["dataset"] != "generic":
        given = [key for key in GENERIC_KEYS if key in entry]
        return (given[0], f"is a key of generic entries only; dataset {entry['dataset']} has its own prompt and answer") if given else None
    for key in ("prompt", "answer", "answer_type"):
        if key not in entry:
            return key, "missing; a generic entry gives prompt, answer and answer_type"
    answer_type, labels = entry["answer_type"], entry.get("labels")
    if answer_type not in GENERIC_ANSWER_TYPES:
        return "answer_type", f"{answer_type!r} is not one of {list(GENERIC_ANSWER_TYPES)}"
    try:
        pieces = placeholders(entry["prompt"])
    except ValueError as e:
        return "prompt", f"{entry['prompt']!r} is not a template ({e}); write {{{{ and }}}} for a literal brace"
    fields = [field for _, field, _, _ in pieces if field is not None]
    if not fields:
        return "prompt", f"{entry['prompt']!r} names no field; write {{question}} where field question's text goes"
    for _, field, spec, conversion in pieces:
        if field == "" or spec or conversion:
            written = f"{{{field}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}"
            return "prompt", f"{written} is not a placeholder; write a field's name alone in braces, e.g. {{question}}"
    if entry["answer"] in fields:
        return "prompt", f"shows the answer field '{entry['answer']}' to the model"
    if answer_type == "choice" and not labels:
        return "answer_type", "choice needs labels, the accepted answers (e.g. labels: [positive, negative])"
    if answer_type != "choice" and labels:
        return "labels", f"are for answer_type choice only, not {answer_type}"
    lowered = [label.strip().lower() for label in labels or []]
    for position, label in enumerate(lowered):
        if not label or label != labels[position].lower():
            return "labels", f"{labels[position]!r} is blank or has surrounding spaces"
        if label in lowered[:position]:
            return "labels", f"{labels[lowered.index(label)]!r} and {labels[position]!r} are one label: answers are matched without case"
    return None


def field_text(r, key):
    """r[key] as text: a number may stand in a prompt, an exact answer or an id too."""
    value = r[key]
    if not isinstance(value, (str, int, float)):
        raise BadRow("wrong_type", f"field '{key}' is {type(value).__name__} {value!r:.60}, not text or a number")
    return str(value)


def exact_answer(r, key):
    answer = field_text(r, key).strip()
    # Exact answers are scored up to their first sentence end or line break (infoflow.world.scoring).
    if not answer.rstrip(".") or ANSWER_END.search(answer.rstrip(".")):
        raise BadRow("bad_value", f"field '{key}' is {answer!r:.60}; an exact answer is scored up to its first '.' or line break, so it holds neither (a decimal is answer_type number)")
    return answer


def generic(entry):
    """The adapter of a generic entry (one generic_problem passes): the prompt template filled in with
    the record's fields, the answer field read as the entry's answer_type, and the id field if any."""
    pieces = [(literal, field) for literal, field, _, _ in placeholders(entry["prompt"])]
    key, answer_type, labels = entry["answer"], entry["answer_type"], entry.get("labels")
    choices = [label.lower() for label in labels] if labels else None

    def adapter(r):
        prompt = "".join(literal + (field_text(r, field) if field is not None else "") for literal, field in pieces)
        if answer_type == "choice":
            answer = choices[label_position(r, key, labels)]
        elif answer_type == "number":
            answer = format_number(to_number(r[key], key))
        elif answer_type == "true_false":
            answer = ("false", "true")[label_position(r, key, ["false", "true", "no", "yes"]) % 2]
        else:
            answer = exact_answer(r, key)
        row = {"prompt": prompt, "answer": answer, "answer_type": GENERIC_ANSWER_TYPES[answer_type], "choices": choices}
        return {**row, "id": field_text(r, entry["id"]).strip()} if "id" in entry else row

    return adapter


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


def adapted(adapter, record):
    """adapter(record); BadRow if the record is one, or if no row can be made of it."""
    if isinstance(record, BadRow):
        raise record
    try:
        return adapter(Record(record))
    except KeyError as e:
        raise BadRow("missing_field", f"missing field '{e.args[0]}'") from None
