r"""Public NLP data sets in one common schema, written as Parquet, and scoring of generated answers.

Every adapter maps one record in its data set's public field layout (as on the Hugging Face hub, or
LLM-Adapters' json files for the out-of-distribution math sets) to one row of this schema:

    id           string  '{dataset}-{split}-{NNNNN}', the record's position in the source split (a
                         generic entry: '{name}-{split}-{value of its id field}' if it names one)
    split        string  the split asked for
    source       string  the data set's name in ADAPTERS, e.g. 'boolq', or a generic entry's name
    prompt       string  the whole text the model is given; it ends with ANSWER_LEAD (a generic
                         entry's: its template filled in), and the model continues with ' ' + answer
                         (the space the rest of the pipeline adds)
    answer       string  the gold answer as the model should produce it (lower case for labels)
    answer_type  string  'choice', 'yes_no', 'number' or 'exact' (generic entries only)
    choices      list<string>, null unless answer_type is 'choice': the accepted labels, in order

The parts: infoflow.world.adapters (the prompt of each data set), infoflow.world.records (local
files and the hub read row by row; bad rows and `on_bad_rows`), infoflow.world.scoring (extract_answer,
is_correct). This module is the command: it loads, samples and writes the rows of one or more entries.
"""

import argparse
import json
import logging
import random

import pyarrow as pa

from infoflow import cli, parquet
from infoflow.io import DataError, write_json
from infoflow.world import adapters, records, scoring
from infoflow.world.adapters import ADAPTERS, adapted
from infoflow.world.records import BadRow, RowCount, read_records

log = logging.getLogger("infoflow.world.public_data")

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
ON_BAD_ROWS = ("error", "skip")


def load(name, source, split, on_bad_rows="error", count=None, generic=None, revision=None):
    """The rows of data set `name` (a key of ADAPTERS), or with `generic` (a generic entry) of the
    generic data set `name`, read from `source` (see read_records).

    A bad row raises DataError '<file>, row N: <problem>', or, with on_bad_rows 'skip', is left out;
    `count` (a RowCount) counts the rows read and skipped; `revision` pins a hub source.
    """
    adapter = adapters.generic(generic) if generic else ADAPTERS[name]
    count = RowCount() if count is None else count
    found, origin = read_records(source, split, revision)
    rows, skipped, first_of_id = [], 0, {}
    for number, (where, record) in enumerate(found, start=1):
        count.read += 1
        try:
            row = adapted(adapter, record)
            row_id = row.pop("id", f"{number - 1:05d}")  # a generic entry's id field, else the position
            if row_id in first_of_id:
                raise BadRow("bad_value", f"field '{generic['id']}' is {row_id!r}, as in {first_of_id[row_id]}")
            first_of_id[row_id] = where
        except BadRow as problem:
            if on_bad_rows != "skip":
                raise DataError(f"{where}: {problem}") from None
            count.skip(where, problem)
            skipped += 1
            continue
        rows.append({"id": f"{name}-{split}-{row_id}", "split": split, "source": name, **row})
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


# --help: this docstring and those of the parts (the one docstring before they were split).
HELP = "\n".join([__doc__, adapters.__doc__, scoring.__doc__, records.__doc__])


def main():
    parser = argparse.ArgumentParser(description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(ADAPTERS))
    parser.add_argument("--source", help="local file or folder, or hub id 'owner/name[:config]'")
    parser.add_argument("--split")
    parser.add_argument("--limit", type=int, help="keep at most this many rows, drawn at random")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --limit draw")
    parser.add_argument("--on-bad-rows", choices=ON_BAD_ROWS, default="error", help="a bad source record stops the job, naming file and row (error), or is left out and counted (skip)")
    parser.add_argument("--entries", help="instead of the above: a JSON list of {dataset, source, split[, limit, seed, on_bad_rows]}"
                        " (dataset 'generic' with its keys: prompt, answer, answer_type[, labels, id, name]), concatenated")
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
    for position, entry in enumerate(entries):
        problem = adapters.generic_problem(entry)
        if problem:
            parser.error(f"entry {position}: {problem[0]}: {problem[1]}")
    read = [(adapters.entry_name(entry), entry["split"]) for entry in entries]
    if len(set(read)) < len(read):  # ids are '{dataset}-{split}-{row}': the rows would share them
        parser.error(f"entries read a data set split twice: {sorted({pair for pair in read if read.count(pair) > 1})}")
    cli.setup()
    count = RowCount()
    rows = []
    for entry in entries:
        name, generic = adapters.entry_name(entry), entry if entry["dataset"] == "generic" else None
        kept = load(name, entry["source"], entry["split"], entry.get("on_bad_rows", args.on_bad_rows), count, generic,
                    entry.get("revision"))
        part = sample(kept, entry.get("limit"), entry.get("seed", 0))
        log.info("%d rows of %s/%s", len(part), name, entry["split"])
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
