"""``tglake report``: one self-contained HTML page of charts over a real local lake."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from chalicelib import compaction, demo, ingest, queries, report, storage
from chalicelib.cli import main
from chalicelib.config import Settings

TITLES = [
    "Messages per day",
    "Activity by hour and weekday",
    "Top users",
    "Content mix",
    "Time to first reply",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A made-up sender whose name would be math text to matplotlib, with an emoji.
ODD_SENDER = {"id": 7100000099, "is_bot": False, "first_name": "Zé $\\frac{1$ 🚀"}
EXTERNAL = re.compile(r"\s*((https?:)?//|file:)", re.IGNORECASE)


class Page(HTMLParser):
    """What a browser would load from the page: sources, links, scripts, headings."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []
        self.tags: list[str] = []
        self.headings: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.tags.append(tag)
        self.links += [values[name] for name in ("src", "href") if name in values]
        if tag == "img":
            self.images.append(values.get("src", ""))

    def handle_data(self, data: str) -> None:
        if self.tags and self.tags[-1] == "h2" and data.strip():
            self.headings.append(data.strip())


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The demo conversation ingested and compacted into a folder lake."""
    folder = tmp_path_factory.mktemp("lake")
    environment = demo.demo_environment(folder)
    settings = Settings.from_env(environment)
    raw = storage.open_store(settings.raw)
    ingestor = ingest.Ingestor(settings, raw)
    for body in demo.generate(7):
        ingestor.ingest(body)
    odd = {
        "update_id": 1,
        "message": {
            "message_id": 1,
            "from": ODD_SENDER,
            "chat": demo.CHAT,
            "date": 1772722800,  # 2026-03-05 12:00 in São Paulo
            "text": "Oi",
        },
    }
    ingestor.ingest(json.dumps(odd).encode())
    worker = compaction.Compactor(settings, raw, storage.open_store(settings.enriched))
    for day in demo.raw_days(item.key for item in raw.list("telegram/")):
        worker.compact_day(day)
    return environment


@pytest.fixture(scope="module")
def run(
    lake: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Result, Path]:
    """``tglake report`` over the demo lake, run once for the tests that read it.

    The period leaves out the demo's last day (2026-03-09), so the page shows
    whether --from and --to reach the queries.
    """
    out = tmp_path_factory.mktemp("report") / "out"
    period = ["--from", "2026-03-04", "--to", "2026-03-08"]
    result = CliRunner().invoke(
        main, ["report", "--out", str(out), "--dpi", "30", *period], env=lake
    )
    return result, out


def test_report_prints_the_page_path_and_exits_zero(run):
    result, out = run

    assert result.exit_code == 0, result.output
    assert result.stdout == f"{out / report.REPORT_FILE}\n"
    assert (out / report.REPORT_FILE).is_file()


def test_the_page_has_a_section_and_one_embedded_png_per_chart(run):
    page = parse(run[1] / report.REPORT_FILE)

    assert page.headings == TITLES
    assert len(page.images) == len(TITLES)
    for source in page.images:
        prefix, _, data = source.partition(",")
        assert prefix == "data:image/png;base64"
        assert base64.b64decode(data, validate=True).startswith(PNG_SIGNATURE)


def test_the_page_loads_no_script_style_or_image_from_elsewhere(run):
    text = (run[1] / report.REPORT_FILE).read_text(encoding="utf-8")
    page = parse(run[1] / report.REPORT_FILE)

    assert text.startswith("<!DOCTYPE html>")
    assert page.tags[:2] == ["html", "head"]
    assert not {"script", "link", "iframe", "object"} & set(page.tags)
    assert page.links and all(not EXTERNAL.match(link) for link in page.links)
    assert "url(" not in text and "@import" not in text


def test_the_page_states_the_chosen_period_and_the_lake_time_zone(run):
    text = (run[1] / report.REPORT_FILE).read_text(encoding="utf-8")

    assert "2026-03-04 to 2026-03-08" in text
    assert "over 5 days with messages" in text
    assert demo.DEMO_ZONE in text


def test_a_sender_name_with_dollar_signs_and_emoji_is_drawn(run):
    result, out = run

    text = (out / report.REPORT_FILE).read_text(encoding="utf-8")
    assert result.exit_code == 0, result.output
    assert "from 8 senders" in text


def test_the_heatmap_rows_are_weekdays_in_order_from_monday_whatever_the_row_order():
    names = dict(enumerate([*WEEKDAYS, "Sunday"], start=1))
    rows = [(day, names[day], hour, day * hour) for day in names for hour in range(24)]
    result = queries.QueryResult(["weekday", "weekday_name", "hour", "messages"], rows)
    result.rows.reverse()

    grid = report.heatmap_grid(result)

    assert [name for name, _ in grid] == [*WEEKDAYS, "Sunday"]
    assert grid[0][1] == list(range(24))
    assert grid[6][1][23] == 7 * 23


def test_report_on_an_empty_lake_fails_with_one_line_and_writes_nothing(
    folder_lake, tmp_path
):
    result = CliRunner().invoke(main, ["report", "--out", str(tmp_path / "out")])

    lines = re.split(r"[\r\n]", result.stderr)
    errors = [line for line in lines if "Error" in line]
    assert result.exit_code == 1
    assert len(errors) == 1
    assert errors[0].startswith("Error: no messages to report")
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_a_message_dated_zero_is_left_out_of_the_per_day_charts(folder_lake, tmp_path):
    raw = storage.open_store(folder_lake.raw)
    ingestor = ingest.Ingestor(folder_lake, raw)
    arrived = datetime(2026, 3, 5, 15, 0, tzinfo=UTC)
    for message_id, stamp in ((1, 1772722800), (2, 0)):
        message = {"message_id": message_id, "from": ODD_SENDER, "chat": demo.CHAT}
        update = {"update_id": message_id, "message": {**message, "date": stamp}}
        ingestor.ingest(json.dumps(update).encode(), arrived=arrived)
    compaction.Compactor(
        folder_lake, raw, storage.open_store(folder_lake.enriched)
    ).compact_day(date(2026, 3, 5))

    result = CliRunner().invoke(main, ["report", "--out", str(tmp_path / "out")])

    assert result.exit_code == 0, result.output
    page = (tmp_path / "out" / report.REPORT_FILE).read_text(encoding="utf-8")
    assert "1 messages over 1 days with messages" in page


def test_report_refuses_a_period_that_ends_before_it_starts(folder_lake, tmp_path):
    result = CliRunner().invoke(
        main, ["report", "--from", "2026-03-06", "--to", "2026-03-05"]
    )

    assert result.exit_code == 2
    assert "--to is before --from" in result.stderr


def test_report_has_help():
    result = CliRunner().invoke(main, ["report", "--help"])

    assert result.exit_code == 0
    assert "--out" in result.stdout
    assert "self-contained HTML page" in result.stdout


def test_report_refuses_a_lake_on_s3_with_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("TGLAKE_ENRICHED", "s3://tglake-test-enriched/lake")
    monkeypatch.setenv("TGLAKE_RAW", str(tmp_path / "raw"))

    result = CliRunner().invoke(main, ["report", "--out", str(tmp_path / "out")])

    assert result.exit_code == 1
    assert "reads a lake in local folders and TGLAKE_ENRICHED is s3://" in result.stderr
    assert not (tmp_path / "out").exists()
