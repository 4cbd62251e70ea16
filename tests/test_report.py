"""``tglake report``: one self-contained HTML page of charts over a real local lake."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from chalicelib import compaction, demo, ingest, report, storage
from chalicelib.cli import main
from chalicelib.config import Settings

SECTION_TITLES = [section.title for section in report.SECTIONS]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Page(HTMLParser):
    """What a browser would fetch or run: every src and href, and the scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.images: list[str] = []
        self.scripts = 0
        self.headings: list[str] = []
        self._in_heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name in ("src", "href"):
            if name in values:
                self.links.append((tag, values[name]))
        if tag == "img":
            self.images.append(values.get("src", ""))
        self.scripts += tag == "script"
        self._in_heading = tag == "h2"

    def handle_endtag(self, tag: str) -> None:
        self._in_heading = False if tag == "h2" else self._in_heading

    def handle_data(self, data: str) -> None:
        if self._in_heading:
            self.headings.append(data.strip())


@pytest.fixture(scope="module")
def demo_lake(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The demo conversation ingested and compacted into a folder lake."""
    folder = tmp_path_factory.mktemp("lake")
    environment = demo.demo_environment(folder)
    settings = Settings.from_env(environment)
    raw = storage.open_store(settings.raw)
    ingestor = ingest.Ingestor(settings, raw)
    for body in demo.generate(7):
        ingestor.ingest(body)
    worker = compaction.Compactor(settings, raw, storage.open_store(settings.enriched))
    for day in demo.raw_days(item.key for item in raw.list("telegram/")):
        worker.compact_day(day)
    return environment


@pytest.fixture
def lake_env(demo_lake: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in demo_lake.items():
        monkeypatch.setenv(name, value)
    return Settings.from_env()


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def test_the_report_embeds_one_png_per_chart_and_loads_nothing_else(
    lake_env, tmp_path
):
    path = report.write_report(lake_env, tmp_path / "out", dpi=40)

    page = parse(path)
    assert path == tmp_path / "out" / report.REPORT_FILE
    assert page.headings == SECTION_TITLES
    assert len(page.images) == len(report.SECTIONS) == 5
    for source in page.images:
        prefix, _, data = source.partition(",")
        assert prefix == "data:image/png;base64"
        assert report.base64.b64decode(data, validate=True).startswith(PNG_SIGNATURE)
    assert page.scripts == 0
    assert all(not re.match(r"(https?:)?//", link) for _, link in page.links)


def test_the_heatmap_names_weekdays_from_monday(lake_env):
    result = report.queries.run_local(report.HEATMAP.query, lake_env)

    grid = report.heatmap_grid(result)

    assert [label for label, _ in grid] == list(report.WEEKDAYS)
    assert all(len(hours) == 24 for _, hours in grid)
    total = report.queries.run_local(report.PER_DAY.query, lake_env)
    assert sum(sum(hours) for _, hours in grid) == sum(
        report.column(total, report.PER_DAY_COUNT)
    )


def test_report_prints_the_page_path_and_exits_zero(lake_env, tmp_path):
    result = CliRunner().invoke(
        main, ["report", "--out", str(tmp_path), "--dpi", "40"]
    )

    assert result.exit_code == 0, result.output
    assert result.stdout == f"{tmp_path / report.REPORT_FILE}\n"
    assert (tmp_path / report.REPORT_FILE).read_text().startswith("<!DOCTYPE html>")


def test_report_on_an_empty_lake_fails_with_one_line_and_writes_nothing(
    folder_lake, tmp_path
):
    result = CliRunner().invoke(main, ["report", "--out", str(tmp_path / "out")])

    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        result.stderr.strip().splitlines()[0]
    ]
    assert "no messages" in result.stderr
    assert not (tmp_path / "out").exists()


def test_report_has_help():
    result = CliRunner().invoke(main, ["report", "--help"])

    assert result.exit_code == 0
    assert "--out" in result.stdout
