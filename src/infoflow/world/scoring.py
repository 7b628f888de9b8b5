"""Scoring of answers generated for public data sets (infoflow.world.public_data's rows), and the
forms gold answers are written in (numbers, normalised text), so that both sides compare alike.

Scoring (extract_answer, is_correct): an exact answer is the text up to its first sentence end or
line break, compared without case and with spaces collapsed (as the synthetic tasks are scored).
Any other answer is searched in the text after the first 'answer is' if the text has one and
holds an answer there, else in the whole text. A choice is the first accepted label standing as a
word (case-insensitive; the longest label wins at one place, so 'grandson' is not 'son'); yes/no
also accepts yes -> true, no -> false; a number is the first one after 'answer is', else the last
one in the text, compared within NUMBER_TOLERANCE. No answer found counts as wrong.

Format (is_in_format): whether a prediction is an answer of the right kind, right or wrong, which
tells a model that does not know from one that does not answer the question: an extracted choice,
number or yes/no; an exact answer only if it is one of the answers the task gives that group of
questions (answer_sets), since any text extracts as an exact answer.
"""

import math
import re

from infoflow.world.records import BadRow

NUMBER_TOLERANCE = 1e-4  # LLM-Adapters' tolerance for float answers
YES_NO = {"true": "true", "false": "false", "yes": "true", "no": "false"}
ANSWER_CUE = re.compile(r"answer is", re.IGNORECASE)
NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")
# An exact answer ends at the first sentence end or line break; spacing and case are not scored.
ANSWER_END = re.compile(r"[.\n]")


def normalize(text):
    return " ".join(ANSWER_END.split(text, maxsplit=1)[0].split()).lower()


def exact_match(prediction, answer):
    return normalize(prediction) == normalize(answer)


def to_number(value, key):
    try:
        number = float(str(value).replace(",", "").replace("$", "").strip())
    except ValueError:
        number = math.nan
    if not math.isfinite(number):  # float() also reads 'nan' and 'inf', which no answer equals
        raise BadRow("bad_value", f"field '{key}' is {value!r}, not a number")
    return number


def format_number(value):
    return str(int(value)) if value.is_integer() else repr(value)


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
    if answer_type == "exact":
        return normalize(text) or None
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
    if row["answer_type"] == "exact":
        return predicted == normalize(row["answer"])
    return predicted == row["answer"]


def answer_sets(examples, groups):
    """{group: the normalised answers of its examples}, `groups` giving each example's group: the
    answers an exact answer of that group can take (is_in_format)."""
    sets = {}
    for example, group in zip(examples, groups, strict=True):
        sets.setdefault(group, set()).add(normalize(example["answer"]))
    return sets


def is_in_format(prediction_text, row, exact_answers):
    """Whether the prediction is an answer of the row's kind (see the module docstring); a row
    without `answer_type` (the synthetic tasks) is exact, and `exact_answers` (normalised) are
    those of its group."""
    answer_type = row.get("answer_type", "exact")
    predicted = extract_answer(prediction_text, answer_type, row.get("choices"))
    return predicted in exact_answers if answer_type == "exact" else predicted is not None
