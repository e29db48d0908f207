"""Regenerates BENCHMARKS.md's tables from the result files: `python -m benchmarks.tables [--check]`.

BENCHMARKS.md holds its prose by hand and each table between two markers naming the result file:

    <!-- results: benchmarks/results/serving-2026-11-30.json -->
    ...generated...
    <!-- /results -->

Several files with the same columns, separated by spaces, make one table (one row group each).

`--check` changes nothing and exits with status 1 when the file is out of date (a test runs it).
"""

import argparse
import os
import re
import sys

from benchmarks import results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKED = re.compile(r"(<!-- results: (?P<paths>[^>]+?) -->\n)(?P<body>.*?)(<!-- /results -->)", re.S)


def regenerate(text, root=ROOT):
    """`text` with every marked table rendered again from its result file."""

    def table(match):
        measured = []
        for name in match["paths"].split():
            path = os.path.join(root, name)
            if not os.path.exists(path):
                raise SystemExit(f"BENCHMARKS.md names {name}, which does not exist")
            measured.append(results.read(path))
        return f"{match.group(1)}{results.render(*measured)}\n{match.group(4)}"

    return MARKED.sub(table, text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default=os.path.join(ROOT, "BENCHMARKS.md"))
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is out of date; change nothing")
    arguments = parser.parse_args(argv)
    with open(arguments.file, encoding="utf-8") as stream:
        text = stream.read()
    updated = regenerate(text)
    if arguments.check:
        if updated != text:
            print(f"{arguments.file} is out of date: run python -m benchmarks.tables", file=sys.stderr)
            return 1
        return 0
    if updated != text:
        with open(arguments.file, "w", encoding="utf-8") as stream:
            stream.write(updated)
    print(f"{arguments.file}: {len(MARKED.findall(text))} tables")
    return 0


if __name__ == "__main__":
    sys.exit(main())
