"""Tables as text: the project's one plain-text formatter, one markdown formatter and one CSV writer."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

Row = dict[str, Any]
Column = str | tuple[str, Callable[[Row], str]]  # a key, or (title, formatter of the whole row)


def _text_cell(value: Any) -> str:
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def format_table(rows: list[Row], title: str) -> str:
    """A plain-text table with a title, columns taken from the first row (ints with thousands separators)."""
    columns = list(rows[0])
    cells = [[_text_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]

    def line(values: Iterable[str]) -> str:
        return "  ".join(v.rjust(w) for v, w in zip(values, widths))

    return "\n".join([title, line(columns), line(["-" * w for w in widths]), *map(line, cells)])


def _markdown_cell(row: Row, column: Column) -> str:
    if not isinstance(column, str):
        try:
            return column[1](row)
        except TypeError:  # a None among the values it formats: not applicable
            return "-"
    value = row[column]
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def markdown_table(rows: list[Row], columns: Sequence[Column]) -> str:
    """A markdown table; a column is a row key (floats to 3 significant digits) or (title, formatter).

    "-" marks a value that does not apply (None).
    """
    titles = [c if isinstance(c, str) else c[0] for c in columns]
    lines = ["| " + " | ".join(titles) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_markdown_cell(row, c) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def csv_text(rows: list[Row], fields: Sequence[str] | None = None) -> str:
    """CSV with a header (``fields``, default the first row's keys) and "\\n" line ends."""
    out = io.StringIO()
    writer = csv.DictWriter(out, list(fields or rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def write_csv(path: Path, rows: list[Row], fields: Sequence[str] | None = None) -> Path:
    """Write ``rows`` to ``path`` as CSV (see :func:`csv_text`)."""
    Path(path).write_text(csv_text(rows, fields))
    return Path(path)
