"""``tglake demo`` and ``tglake compact`` as a user runs them."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from chalicelib import demo, ingest, layout, storage
from chalicelib.cli import main
from chalicelib.config import Settings


def lake_counts(folder: Path) -> tuple[int, int, int]:
    raw = list((folder / "raw" / "telegram").glob("*/*.json"))
    files = list((folder / "enriched" / "telegram").glob("*/*.parquet"))
    rows = sum(pq.read_metadata(path).num_rows for path in files)
    return len(raw), len(files), rows


def test_demo_runs_the_pipeline_and_a_rerun_changes_no_counts(tmp_path):
    runner = CliRunner()

    first = runner.invoke(main, ["demo", "--folder", str(tmp_path)])
    counts = lake_counts(tmp_path)
    second = runner.invoke(main, ["demo", "--folder", str(tmp_path)])

    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    bodies = demo.generate()
    assert counts == (len(set(bodies)), demo.DAYS, counts[2])
    assert lake_counts(tmp_path) == counts
    assert first.stdout == second.stdout
    assert "messages_per_day" in first.stdout


def test_the_demo_conversation_has_what_the_readme_promises():
    updates = [json.loads(body) for body in demo.generate()]
    messages = [u.get("message") or u.get("edited_message") for u in updates]

    assert len(updates) - len({json.dumps(u) for u in updates}) == 1
    assert any("edited_message" in u for u in updates)
    assert any("reply_to_message" in m for m in messages)
    assert any("photo" in m and "caption" in m for m in messages)
    for key in ("sticker", "voice", "new_chat_members", "left_chat_member"):
        assert any(key in m for m in messages), key
    assert demo.generate(7) == demo.generate(7)


def seed_day(settings: Settings) -> None:
    ingestor = ingest.Ingestor(settings, storage.open_store(settings.raw))
    for update_id, message_id in ((1, 10), (2, 11), (3, 11)):
        update = {
            "update_id": update_id,
            "message": {
                "message_id": message_id,
                "date": 1772668800,  # 2026-03-05 00:00 UTC
                "chat": {"id": -100123, "type": "supergroup"},
                "text": "oi",
            },
        }
        ingestor.ingest(json.dumps(update).encode())


def test_compact_prints_one_summary_line_per_day(folder_lake):
    seed_day(folder_lake)

    result = CliRunner().invoke(
        main, ["compact", "--from", "2026-03-04", "--to", "2026-03-05"]
    )

    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("2026-03-04 objects=0 rows=0")
    assert lines[1].startswith("2026-03-05 objects=3 rows=2 skipped=0")
    assert "duplicates=1" in lines[1]


def test_a_range_goes_on_past_a_locked_day_and_names_it(folder_lake):
    seed_day(folder_lake)
    locked = {"owner": "ab", "expires": time.time() + 600}
    storage.open_store(folder_lake.enriched).put(
        layout.lock_key(date(2026, 3, 4)), json.dumps(locked).encode()
    )

    result = CliRunner().invoke(
        main, ["compact", "--from", "2026-03-04", "--to", "2026-03-05"]
    )

    assert result.exit_code == 1
    assert result.stdout.startswith("2026-03-05 objects=3 rows=2")
    assert "2026-03-04 not compacted: day 2026-03-04 is being compacted" in (
        result.stderr
    )
    assert result.stderr.strip().endswith("Error: 1 of 2 days not compacted")


@pytest.mark.parametrize(
    "arguments",
    [
        [],
        ["--date", "2026-03-05", "--yesterday"],
        ["--from", "2026-03-05"],
        ["--from", "2026-03-05", "--to", "2026-03-01"],
        ["--date", "yesterday"],
        ["--all", "--date", "2026-03-05"],
    ],
)
def test_compact_refuses_unclear_days_with_one_line(folder_lake, arguments):
    result = CliRunner().invoke(main, ["compact", *arguments])

    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_a_bad_setting_ends_as_one_line_and_exit_code_one(monkeypatch):
    monkeypatch.setenv("TGLAKE_TIMEZONE", "Mars/Olympus")

    result = CliRunner().invoke(main, ["compact", "--yesterday"])

    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: TGLAKE_TIMEZONE must be an IANA time zone name, not 'Mars/Olympus'"
    )


def test_every_command_has_help():
    runner = CliRunner()
    for name, command in main.commands.items():
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        assert command.help or command.short_help, name


@pytest.mark.parametrize(
    ("arguments", "missing"),
    [
        (["compact", "--date", "2026-03-05"], "raw"),
        (["query", "messages_per_day"], "enriched"),
        (["compact", "--all"], "raw"),
    ],
)
def test_a_missing_layer_folder_is_named_on_stderr(folder_lake, arguments, missing):
    result = CliRunner().invoke(main, arguments)

    assert result.exit_code == 0, result.output
    location = getattr(folder_lake, missing)
    variable = f"TGLAKE_{missing.upper()}"
    assert f"warning: {location} ({variable}) does not exist" in result.stderr
    assert "warning" not in result.stdout


def test_compact_all_says_when_there_is_nothing_to_rewrite(folder_lake):
    result = CliRunner().invoke(main, ["compact", "--all"])

    assert result.stdout.strip() == (
        f"no days to rewrite in {folder_lake.raw} or {folder_lake.enriched}"
    )


def test_a_lake_that_exists_gets_no_warning(folder_lake):
    seed_day(folder_lake)

    result = CliRunner().invoke(main, ["compact", "--date", "2026-03-05"])

    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
