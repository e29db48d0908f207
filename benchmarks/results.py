"""A benchmark's result as a JSON file, and the Markdown table BENCHMARKS.md shows of it.

    {"benchmark", "title", "command", "date", "machine", "versions",
     "columns": [...], "rows": [[...], ...],      the table, cells as shown
     "records": [{...}, ...], "summary": {...}}   every measurement, unrounded where it matters

Every table names the CPU and date it was measured on, from the file itself.
"""

import datetime
import json
import os
import re
import shlex
import sys

from keras_gen import environment
from keras_gen import io_utils

DIRECTORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def make(benchmark, columns, rows, records=(), summary=None, title=None, argv=None):
    """A result of the command that is running now (its argv), measured on this machine today."""
    argv = sys.argv if argv is None else argv
    return {
        "benchmark": benchmark,
        "title": title or benchmark,
        "command": "python -m benchmarks " + shlex.join(argv[1:]),
        "date": datetime.date.today().isoformat(),
        "machine": environment.machine_description(),
        "versions": environment.library_versions(),
        "columns": list(columns),
        "rows": [list(row) for row in rows],
        "records": list(records),
        "summary": summary or {},
    }


def file_name(result, tag=None):
    """<benchmark>[-<tag>]-<date>.json."""
    parts = [result["benchmark"], tag, result["date"]]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(part for part in parts if part)) + ".json"


def write(result, directory=DIRECTORY, tag=None):
    """Writes the result as a new file in `directory` (never over an earlier one); returns its path."""
    path = os.path.join(directory, file_name(result, tag))
    stem, count = path[: -len(".json")], 2
    while os.path.exists(path):
        path, count = f"{stem}-{count}.json", count + 1
    io_utils.write_text(path, json.dumps(result, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return path


def read(path):
    return io_utils.read_json(path)


def _is_number(cell):
    return isinstance(cell, (int, float)) or bool(
        re.fullmatch(r"\*{0,2}[−\-]?[\d.,]+( [±/] [\d.,]+)*\*{0,2}", str(cell))
    )


def render(*measured):
    """The Markdown of one or more results with the same columns: when, where and how, then one table.

    Each result's line names its date, CPU and command; rows follow in the order given.
    """
    columns = measured[0]["columns"]
    if any(result["columns"] != columns for result in measured):
        raise ValueError("results shown in one table must have the same columns")
    rows = [row for result in measured for row in result["rows"]]
    aligned = [
        "---:" if rows and all(_is_number(row[index]) for row in rows) else "---" for index in range(len(columns))
    ]
    lines = []
    for result in measured:
        line = f"*Measured {result['date']} on {result['machine']}:* `{result['command']}`"
        if result.get("transcribed"):  # Results of before benchmarks/ kept their tables, not the raw output.
            line += " (transcribed from that day's table; the raw output was not kept)"
        lines += [line, ""]
    lines += ["| " + " | ".join(_cell(column) for column in columns) + " |", "|" + "|".join(aligned) + "|"]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value):
    """A table cell's Markdown: a "|" in it (p(x|y)) would end the cell."""
    return "" if value is None else str(value).replace("|", "\\|")
