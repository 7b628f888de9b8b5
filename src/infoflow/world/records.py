r"""Reading public data sets row by row, from local files or the Hugging Face hub.

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

import csv
import json
import re
from pathlib import Path

from infoflow.io import DataError, open_text, read_parquet, utf8_problem

LOCAL_FORMATS = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}
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


def read_records(source, split, revision=None):
    """(('<file>, row N', record or BadRow) of every row, the name to quote for the whole source)
    from a local file or folder, or a hub id 'id[:config]' (at `revision`, default its main branch)."""
    path = Path(source)
    if path.exists():
        if revision:
            raise DataError(f"{source}: a revision ({revision}) selects a version of a hub data set, not of a local file or folder")
        files, loader = local_files(path, split)
        origin = str(files[0]) if len(files) == 1 else f"{source} (split {split})"
        return ((f"{file}, row {row}", record) for file in files for row, record in READERS[loader](file)), origin
    if path.suffix in LOCAL_FORMATS:
        raise DataError(f"{source}: no such file")
    import datasets  # only hub ids need it; scoring is imported where it is not installed

    datasets.disable_progress_bars()  # job logs are files: no progress bars in them
    hub_id, _, config = source.partition(":")
    try:
        data = datasets.load_dataset(hub_id, config or None, split=split, revision=revision)
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
