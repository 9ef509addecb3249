"""How a query result prints: the output formats and the text of each.

Apart from `symsweep.query` (DuckDB, pandas, pyarrow) so that the CLI can list the formats
in its --help without importing them. The values arrive as text already (DuckDB converts
them: `symsweep.query`); this module only lays them out.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from symsweep.errors import QueryError

FORMATS = ("table", "csv", "json")


@dataclass(frozen=True)
class Shown:
    """A result ready to print: its column names and each value as text (JSON text for
    `json`; None is NULL), at most the rows asked for, and how many rows it has."""

    columns: list[str]
    rows: list[tuple]
    total: int


def check_format(fmt: str) -> None:
    """QueryError naming the allowed formats unless `fmt` is one."""
    if fmt not in FORMATS:
        raise QueryError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")


def _unique(names: list[str]) -> list[str]:
    """Column names made unique for JSON keys: a, a_1, a_2, ... (skipping names the result has)."""
    taken, out = set(names), []
    for name in names:
        new, k = name, 0
        while new in out or (new != name and new in taken):
            k += 1
            new = f"{name}_{k}"
        out.append(new)
    return out


def format_shown(shown: Shown, fmt: str = "table") -> str:
    """A shown result as right-aligned columns (NULL for missing values), CSV (a header line,
    then the rows; NULL is empty) or one JSON array of records (duplicate names made unique)."""
    check_format(fmt)
    if fmt == "json":
        keys = [json.dumps(k) for k in _unique(shown.columns)]
        return "[" + ", ".join("{" + ", ".join(f"{k}: {'null' if v is None else v}" for k, v in zip(keys, row))
                               + "}" for row in shown.rows) + "]"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(shown.columns)
        writer.writerows(["" if v is None else v for v in row] for row in shown.rows)
        return out.getvalue().rstrip("\n")
    if not shown.rows:
        return "  ".join(shown.columns) + "\n(0 rows)"
    cells = [["NULL" if v is None else v.replace("\n", "\\n") for v in row] for row in shown.rows]
    widths = [max(len(name), *(len(row[i]) for row in cells)) for i, name in enumerate(shown.columns)]
    return "\n".join("  ".join(v.rjust(w) for v, w in zip(line, widths)) for line in [shown.columns, *cells])
