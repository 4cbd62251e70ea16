"""The HTML report: one self-contained page of charts over the analyses in athena_sql/.

Every number on the page comes from a query file run locally on DuckDB
(``queries.run_local``); this module only draws the results. The page holds its
images as base64 PNG and has no script, stylesheet or image from elsewhere, so it can
be mailed or opened offline. matplotlib is imported only while drawing, and draws
through its Agg canvas without pyplot's global state.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib import queries
from chalicelib.config import Settings
from chalicelib.errors import TglakeError

log = logging.getLogger(__name__)

REPORT_FILE = "tglake-report.html"
DEFAULT_DPI = 110
SUMMARY_QUERY = "summary"
HOURS = 24


class EmptyLake(TglakeError):
    """The lake holds no message in the chosen period and table."""


@dataclass(frozen=True)
class Section:
    """One chart of the page: its title, the query file that feeds it, its drawing.

    ``draw`` fills a matplotlib Figure from the query's result and returns a
    one-sentence reading of the chart, printed under it.
    """

    title: str
    query: str
    draw: Callable[[Any, queries.QueryResult, Settings], str]
    size: tuple[float, float] = (9.0, 3.4)


def write_report(
    settings: Settings,
    out: Path,
    *,
    params: Mapping[str, str] | None = None,
    dpi: int = DEFAULT_DPI,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Run the queries, draw each chart and write the page; return its path.

    ``params`` (``start``, ``end``, ``table``) go to every query. Raises EmptyLake
    before writing anything when the period holds no message.
    """
    for name, location in (
        ("TGLAKE_RAW", settings.raw),
        ("TGLAKE_ENRICHED", settings.enriched),
    ):
        if location.startswith("s3://"):
            raise TglakeError(
                f"tglake report reads a lake in local folders and {name} is "
                f"{location}; copy it with `aws s3 sync` and point {name} at the copy"
            )
    summary = queries.run_local(SUMMARY_QUERY, settings, params)
    if progress:
        progress(1)
    facts = _first_row(summary)
    if not facts.get("messages"):
        raise EmptyLake(_empty_reason(settings, (params or {}).get("table")))
    blocks = []
    for section in SECTIONS:
        result = queries.run_local(section.query, settings, params)
        blocks.append(_block(section, result, settings, dpi))
        if progress:
            progress(1)
    path = out / REPORT_FILE
    try:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(_page(settings, facts, blocks), encoding="utf-8")
    except OSError as error:
        raise TglakeError(f"cannot write {path}: {error.strerror}") from None
    log.info("wrote report path=%s charts=%d", path, len(blocks))
    return path


def steps() -> int:
    """How many progress steps ``write_report`` reports: one per query."""
    return 1 + len(SECTIONS)


def column(result: queries.QueryResult, name: str) -> list[Any]:
    """One column of a result, or a clear error when the query file changed."""
    try:
        index = result.columns.index(name)
    except ValueError:
        raise TglakeError(
            f"the report needs a column {name!r}; the query gives "
            f"{', '.join(result.columns)}"
        ) from None
    return [row[index] for row in result.rows]


def heatmap_grid(result: queries.QueryResult) -> list[tuple[str, list[int]]]:
    """The heatmap's rows in weekday order (1 = Monday): name and 24 hourly counts."""
    rows: dict[int, tuple[str, list[int]]] = {}
    for weekday, name, hour, messages in zip(
        column(result, "weekday"),
        column(result, "weekday_name"),
        column(result, "hour"),
        column(result, "messages"),
        strict=True,
    ):
        rows.setdefault(weekday, (name, [0] * HOURS))[1][hour] = messages
    return [rows[weekday] for weekday in sorted(rows)]


def dated(result: queries.QueryResult) -> queries.QueryResult:
    """The rows whose ``day`` is known (Telegram may send a message dated 0)."""
    days = column(result, "day")
    rows = [row for row, day in zip(result.rows, days, strict=True) if day is not None]
    return queries.QueryResult(result.columns, rows)


def _draw_per_day(figure: Any, result: queries.QueryResult, settings: Settings) -> str:
    result = dated(result)
    days, counts = column(result, "day"), column(result, "messages")
    if not days:
        _nothing(figure, "no message with a date")
        return "No message in the period has a date."
    axes = figure.subplots()
    axes.bar(days, counts, color="#3b75af")
    _date_axis(axes)
    axes.set_ylabel("messages")
    _count_axis(axes.yaxis)
    peak = max(counts)
    busiest = days[counts.index(peak)]
    return (
        f"{sum(counts)} messages over {len(days)} days with messages; the busiest "
        f"day was {busiest} with {peak}. Service messages are not counted."
    )


def _draw_heatmap(figure: Any, result: queries.QueryResult, settings: Settings) -> str:
    grid = heatmap_grid(result)
    names = [name for name, _ in grid]
    values = [hours for _, hours in grid]
    axes = figure.subplots()
    image = axes.imshow(values, aspect="auto", cmap="YlOrRd", interpolation="nearest")
    axes.set_yticks(range(len(names)), names)
    axes.set_xticks(range(0, HOURS, 2), [f"{hour:02d}h" for hour in range(0, HOURS, 2)])
    axes.set_xlabel(f"local hour ({settings.timezone})")
    figure.colorbar(image, ax=axes, label="messages")
    cells = [
        (count, name, hour) for name, hours in grid for hour, count in enumerate(hours)
    ]
    # The first busiest cell, Monday and early hours first.
    peak, name, hour = max(cells, key=lambda cell: cell[0])
    return (
        f"The busiest hour of the week was {name} at {hour:02d}:00 "
        f"({settings.timezone}) with {peak} messages."
    )


def _draw_top_users(
    figure: Any, result: queries.QueryResult, settings: Settings
) -> str:
    names = [
        _plain(name) if name else f"user {user}"
        for name, user in zip(
            column(result, "first_name"), column(result, "user_id"), strict=True
        )
    ]
    counts, shares = column(result, "messages"), column(result, "share_pct")
    if not names:
        _nothing(figure, "no message with a sender")
        return "No message in the period has a sender (channel posts only)."
    axes = figure.subplots()
    positions = range(len(names))
    axes.barh(positions, counts, color="#4f9a6b")
    axes.set_yticks(positions, names)
    axes.invert_yaxis()
    axes.set_xlabel("messages")
    _count_axis(axes.xaxis)
    for position, count, share in zip(positions, counts, shares, strict=True):
        axes.annotate(f" {share}%", (count, position), va="center", fontsize="small")
    return (
        f"The {len(names)} most active senders wrote {round(sum(shares), 1)}% of "
        "the messages, each shown with the name on their latest message."
    )


def _draw_content_mix(
    figure: Any, result: queries.QueryResult, settings: Settings
) -> str:
    result = dated(result)
    days = sorted(set(column(result, "day")))
    if not days:
        _nothing(figure, "no message with a date")
        return "No message in the period has a date."
    totals: dict[str, int] = {}
    counts: dict[tuple[Any, str], int] = {}
    for day, kind, messages in zip(
        column(result, "day"),
        column(result, "content_type"),
        column(result, "messages"),
        strict=True,
    ):
        totals[kind] = totals.get(kind, 0) + messages
        counts[day, kind] = messages
    kinds = sorted(totals, key=lambda kind: (-totals[kind], kind))
    axes = figure.subplots()
    bottom = dict.fromkeys(days, 0)
    for kind in kinds:
        # Only the days that have the kind: an empty bar on top of a stack would pin
        # the axis to its height and leave no room above the tallest day.
        shown = [day for day in days if (day, kind) in counts]
        heights = [counts[day, kind] for day in shown]
        axes.bar(shown, heights, bottom=[bottom[day] for day in shown], label=kind)
        for day, height in zip(shown, heights, strict=True):
            bottom[day] += height
    _date_axis(axes)
    axes.set_ylabel("messages")
    _count_axis(axes.yaxis)
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    mix = ", ".join(f"{totals[kind]} {kind}" for kind in kinds)
    return f"Over the period: {mix}. Service messages (joins, leaves) included."


def _draw_first_reply(
    figure: Any, result: queries.QueryResult, settings: Settings
) -> str:
    facts = _first_row(result)
    asked, answered = facts["questions"] or 0, facts["answered"] or 0
    median, p90 = facts["median_seconds"], facts["p90_seconds"]
    share, delays = figure.subplots(1, 2, width_ratios=(1, 2))
    share.bar(["answered", "unanswered"], [answered, asked - answered])
    share.set_ylabel("questions")
    _count_axis(share.yaxis)
    if answered:
        minutes = [median / 60, p90 / 60]
        delays.barh(["median", "90th percentile"], minutes, color="#c2703d")
        delays.invert_yaxis()
        delays.set_xlabel("minutes to the first reply from someone else")
    else:
        delays.set_axis_off()
        delays.text(0.5, 0.5, "no question was answered", ha="center", va="center")
    if not asked:
        return "No message with a question mark in the period."
    if not answered:
        return f"{asked} questions, none answered by someone else."
    return (
        f"{asked} questions (messages with a question mark), {answered} answered by "
        f"someone else ({facts['answered_pct']}%); the first reply came after "
        f"{_minutes(median)} at the median and {_minutes(p90)} at the 90th percentile."
    )


def _empty_reason(settings: Settings, table: str | None) -> str:
    if table == "all_messages":
        where = f"{settings.enriched} or {settings.raw}"
        hint = "check TGLAKE_RAW and TGLAKE_ENRICHED, or widen --from/--to"
    else:
        where = settings.enriched
        hint = (
            "run `tglake compact` first, add --with-raw to count "
            "days not yet compacted, or widen --from/--to"
        )
    return f"no messages to report in {where} for this period; {hint}"


def _date_axis(axes: Any) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator(maxticks=12)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _count_axis(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))
    # Leave room above the tallest bar.
    axis.axes.margins(**{axis.axis_name: 0.06})


def _plain(text: str) -> str:
    # A "$" pair in a user's name would start matplotlib's math text (and may fail).
    return text.replace("$", r"\$")


def _nothing(figure: Any, text: str) -> None:
    axes = figure.subplots()
    axes.set_axis_off()
    axes.text(0.5, 0.5, text, ha="center", va="center")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def _first_row(result: queries.QueryResult) -> dict[str, Any]:
    if not result.rows:
        return {}
    return dict(zip(result.columns, result.rows[0], strict=True))


SECTIONS = (
    Section("Messages per day", "messages_per_day", _draw_per_day),
    Section(
        "Activity by hour and weekday", "activity_heatmap", _draw_heatmap, (9.0, 3.2)
    ),
    Section("Top users", "top_users", _draw_top_users),
    Section("Content mix", "content_mix_per_day", _draw_content_mix),
    Section("Time to first reply", "answered_questions", _draw_first_reply, (9.0, 2.6)),
)


def _block(
    section: Section, result: queries.QueryResult, settings: Settings, dpi: int
) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=section.size, layout="constrained")
    FigureCanvasAgg(figure)
    note = section.draw(figure, result, settings)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # Emoji in names have no glyph in matplotlib's default font: drawn as boxes.
        warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
        # No Software tag: the same data gives the same bytes.
        figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    image = base64.b64encode(buffer.getvalue()).decode("ascii")
    title = html.escape(section.title)
    return (
        f'<section id="{section.query}">\n<h2>{title}</h2>\n'
        f'<img alt="{title}" src="data:image/png;base64,{image}">\n'
        f"<p>{html.escape(note)}</p>\n"
        f'<p class="source">Query: athena_sql/{section.query}.sql</p>\n</section>'
    )


def _page(settings: Settings, facts: Mapping[str, Any], blocks: Sequence[str]) -> str:
    overview = (
        f"{facts['first_day']} to {facts['last_day']}: {facts['messages']} messages "
        f"from {facts['users']} senders in {facts['chats']} chat(s), "
        f"{facts['replies']} replies, {facts['media']} media messages. "
        f"Days and hours in {settings.timezone}."
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tglake report</title>
<style>
body {{ font-family: sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }}
img {{ max-width: 100%; }}
section {{ margin-bottom: 2.5rem; }}
.source {{ color: #777; font-size: small; }}
</style>
</head>
<body>
<h1>tglake report</h1>
<p>{html.escape(overview)}</p>
{chr(10).join(blocks)}
</body>
</html>
"""
