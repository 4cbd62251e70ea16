"""The HTML report: one self-contained page of charts over the analyses in athena_sql/.

Every number on the page comes from a query file run locally on DuckDB
(``queries.run_local``); this module only draws the results. The page holds its
images as base64 PNG and has no script, stylesheet or image from elsewhere, so it can
be mailed or opened offline. matplotlib is imported only while drawing.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from chalicelib import queries
from chalicelib.config import Settings
from chalicelib.errors import TglakeError

log = logging.getLogger(__name__)

REPORT_FILE = "tglake-report.html"
DEFAULT_DPI = 110
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class EmptyLake(TglakeError):
    """The enriched layer holds no message to chart."""


@dataclass(frozen=True)
class Section:
    """One chart of the page and the query file that feeds it."""

    title: str
    query: str
    draw: Callable[[Any, queries.QueryResult], str]
    size: tuple[float, float] = (9.0, 3.6)


def write_report(
    settings: Settings,
    out: Path,
    *,
    dpi: int = DEFAULT_DPI,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Run each section's query, draw it and write the page; return its path."""
    results = []
    for section in SECTIONS:
        results.append(queries.run_local(section.query, settings))
        if progress:
            progress(1)
    if not any(results[0].rows):
        raise EmptyLake(
            f"no compacted messages in {settings.enriched}; "
            "run `tglake compact` (or `tglake demo`) first"
        )
    blocks = []
    for section, result in zip(SECTIONS, results, strict=True):
        blocks.append(_block(section, result, dpi))
        if progress:
            progress(1)
    out.mkdir(parents=True, exist_ok=True)
    path = out / REPORT_FILE
    path.write_text(_page(settings, blocks, _period(results[0])), encoding="utf-8")
    log.info("wrote report path=%s charts=%d", path, len(blocks))
    return path


def steps() -> int:
    """How many progress steps ``write_report`` reports."""
    return 2 * len(SECTIONS)


def _block(section: Section, result: queries.QueryResult, dpi: int) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=section.size, layout="constrained")
    FigureCanvasAgg(figure)
    note = section.draw(figure, result)
    buffer = io.BytesIO()
    # No Software tag: the same data gives the same bytes.
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    image = base64.b64encode(buffer.getvalue()).decode("ascii")
    title = html.escape(section.title)
    return (
        f'<section id="{section.query}">\n<h2>{title}</h2>\n'
        f'<img alt="{title}" src="data:image/png;base64,{image}">\n'
        f"<p>{html.escape(note)}</p>\n</section>"
    )


def _page(settings: Settings, blocks: Sequence[str], period: str) -> str:
    body = "\n".join(blocks)
    zone = html.escape(settings.timezone)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tglake report</title>
<style>
body {{ font-family: sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }}
img {{ max-width: 100%; }}
section {{ margin-bottom: 2.5rem; }}
</style>
</head>
<body>
<h1>tglake report</h1>
<p>{html.escape(period)}; hours and days in {zone}.</p>
{body}
</body>
</html>
"""


def _period(per_day: queries.QueryResult) -> str:
    days = sorted(str(value) for value in _column(per_day, DAY_COLUMN))
    return f"{days[0]} to {days[-1]}"


def _column(result: queries.QueryResult, name: str) -> list[Any]:
    try:
        index = result.columns.index(name)
    except ValueError:
        raise TglakeError(
            f"the report expects a column {name!r}, the query gives {result.columns}"
        ) from None
    return [row[index] for row in result.rows]
