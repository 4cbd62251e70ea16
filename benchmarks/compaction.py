"""Compaction benchmark: tglake's compactor against the original design's algorithm,
from a local folder and from S3 served over HTTP by a moto server on 127.0.0.1.

The parent process generates one day of realistic updates per size and files them
with tglake's own ``Ingestor`` (so the keys are the webhook's), then runs every case
in a fresh Python process, so each case's peak RSS is its own. Inside a case the
clock starts once the compactor's modules are loaded (pyarrow; boto3 too for the
original, which imported it at module level) and stops when the day's Parquet file
is in the enriched store: listing, reading, converting, writing and uploading are
all in, and so is what the code imports inside functions.

Messages per second counts the raw objects of the day read and compacted (a
redelivery that overwrote itself is one object). Two baselines run the original
algorithm (see ``benchmarks/original.py``): with the original's eight columns, and
with tglake's thirty. They are measured on the folder only: on the moto server the
server itself is the bottleneck (a few hundred requests per second), so there the
table shows throughput against reader threads instead.

    python -m benchmarks.compaction              # the full run (about 14 minutes)
    python -m benchmarks.compaction --quick      # under a minute
    python -m benchmarks.compaction --sizes 100000 --baseline-sizes "" \
        --wide-baseline-sizes "" --skip-s3
    python -m benchmarks.compaction --sizes 10000 --baseline-sizes "" \
        --wide-baseline-sizes "" --skip-s3 --repeat 1 --profile   # cProfile, stderr
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from benchmarks import common
from benchmarks.common import say
from benchmarks.updates import DAY, ZONE, iter_updates

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 50.0
TARGET_RATE = 20_000.0
TARGET_RATE_FROM = 10_000
TARGET_RSS_MB = 300.0
TARGET_RSS_SIZE = 100_000
LOAD_THREADS = 8


def main(argv: list[str] | None = None) -> None:
    """Measure compaction and print Markdown tables on stdout."""
    args = _parser().parse_args(argv)
    if args.case:
        run_case(json.loads(args.case))
        return
    if args.quick:
        args.sizes, args.baseline_sizes = [1_000, 10_000], [1_000]
        args.baseline_repeat = 1
        args.wide_baseline_sizes = [1_000]
        args.s3_sizes, args.threads = [1_000], [1, 16]
    common.use_fake_aws()
    print(f"# Compaction benchmark, {date.today().isoformat()}\n")
    print(f"Machine: {common.machine()}\n")
    print(f"Load average at start: {common.load()}\n")
    with tempfile.TemporaryDirectory(prefix="bench-compaction-") as work:
        folder = folder_cases(Path(work), args)
        s3 = [] if args.skip_s3 else s3_cases(args)
    print("## From a local folder\n")
    print(folder_table(folder))
    if s3:
        print("\n## From S3 on a moto server (HTTP on 127.0.0.1)\n")
        print(s3_table(s3))
    print(f"\nLoad average at the end: {common.load()}")
    print("\n## Targets\n")
    print(targets(folder))


def _sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=[1_000, 10_000, 100_000],
        help="updates per day compacted by tglake from a folder (comma-separated)",
    )
    parser.add_argument(
        "--baseline-sizes",
        type=_sizes,
        default=[1_000, 10_000],
        help="sizes the original design compacts from a folder ('' for none)",
    )
    parser.add_argument(
        "--wide-baseline-sizes",
        type=_sizes,
        default=[1_000, 10_000],
        help="sizes the original algorithm compacts into tglake's 30 columns",
    )
    parser.add_argument(
        "--s3-sizes",
        type=_sizes,
        default=[1_000, 10_000],
        help="sizes compacted from the moto server",
    )
    parser.add_argument(
        "--threads",
        type=_sizes,
        default=[1, 4, 16, 32],
        help="reader threads tried on the moto server",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=5,
        help="fresh runs of each tglake folder case (the median is shown)",
    )
    parser.add_argument(
        "--baseline-repeat",
        type=int,
        default=3,
        help="fresh runs of each baseline case (the median is shown)",
    )
    parser.add_argument("--skip-s3", action="store_true", help="folder cases only")
    parser.add_argument("--quick", action="store_true", help="a run of under a minute")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile tglake's cases (stderr)"
    )
    parser.add_argument("--case", help=argparse.SUPPRESS)
    return parser


def load_day(store: Any, count: int, *, threads: int = 1) -> int:
    """File ``count`` generated updates with tglake's Ingestor; objects written."""
    from chalicelib.config import Settings
    from chalicelib.ingest import Ingestor

    ingestor = Ingestor(Settings(timezone=ZONE), store)
    bodies = iter_updates(count)
    if threads == 1:
        keys = {ingestor.ingest(body).key for body in bodies}
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            keys = {outcome.key for outcome in pool.map(ingestor.ingest, bodies)}
    return len(keys)


def folder_cases(work: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every folder case, each in a fresh process."""
    results = []
    sizes = set(args.sizes) | set(args.baseline_sizes) | set(args.wide_baseline_sizes)
    for size in sorted(sizes):
        lake = work / f"lake-{size}"
        say(f"loading {size:,} updates into a folder")
        objects = load_day(common.PlainFolder(lake / "raw"), size)
        say(f"  {objects:,} objects")
        kinds = []
        if size in args.baseline_sizes:
            kinds.append("original")
        if size in args.wide_baseline_sizes:
            kinds.append("original-wide")
        if size in args.sizes:
            kinds.append("tglake")
        for kind in kinds:
            say(f"compacting {size:,} from the folder: {kind}")
            spec = {
                "kind": kind,
                "raw": str(lake / "raw"),
                "enriched": str(lake / f"enriched-{kind}"),
                "threads": common_threads(),
                "profile": args.profile and kind == "tglake",
            }
            repeats = args.repeat if kind == "tglake" else args.baseline_repeat
            runs = [fresh_process(spec) for _ in range(repeats)]
            results.append({"size": size, **middle(runs)})
    return results


def middle(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median time, with the highest peak RSS of all runs."""
    ordered = sorted(runs, key=lambda run: run["seconds"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["rss_mb"] = max(run["rss_mb"] for run in runs)
    chosen["runs"] = len(runs)
    chosen["all_seconds"] = [round(run["seconds"], 3) for run in runs]
    return chosen


def common_threads() -> int:
    from chalicelib.config import Settings

    return Settings.read_threads


def s3_cases(args: argparse.Namespace) -> list[dict[str, Any]]:
    """tglake from the moto server at each size and thread count."""
    from chalicelib.storage import S3Store

    server, endpoint = common.start_moto_server()
    results = []
    try:
        client = common.s3_client(endpoint)
        for bucket in (common.BUCKET_RAW, common.BUCKET_ENRICHED):
            client.create_bucket(Bucket=bucket)
        for size in args.s3_sizes:
            prefix = f"lake-{size}"
            say(f"loading {size:,} updates into the moto server")
            started = time.perf_counter()
            raw = S3Store(common.BUCKET_RAW, prefix, client=client)
            objects = load_day(raw, size, threads=LOAD_THREADS)
            rate = objects / (time.perf_counter() - started)
            say(f"  {objects:,} objects at {rate:.0f} puts/s")
            for threads in args.threads:
                say(f"compacting {size:,} from the moto server, {threads} threads")
                spec = {
                    "kind": "tglake",
                    "raw": f"s3://{common.BUCKET_RAW}/{prefix}",
                    "enriched": f"s3://{common.BUCKET_ENRICHED}/{prefix}",
                    "endpoint": endpoint,
                    "threads": threads,
                    "profile": False,
                }
                results.append(
                    {"size": size, "put_rate": rate, **fresh_process(spec, endpoint)}
                )
    finally:
        server.stop()
    return results


def fresh_process(spec: dict[str, Any], endpoint: str | None = None) -> dict[str, Any]:
    """Run one case in a new interpreter and return what it measured."""
    env = {**os.environ, **common.fake_aws(endpoint)}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.compaction", "--case", json.dumps(spec)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=3600,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"case {spec} failed (exit {done.returncode})")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    say(
        f"  {result['objects']:,} objects, {result['rows']:,} rows in "
        f"{result['seconds']:.2f} s, peak RSS {result['rss_mb']:.0f} MB"
    )
    return {**spec, **result}


def run_case(spec: dict[str, Any]) -> None:
    """Inside the fresh process: compact one day and print the measurements."""
    # The compactor's modules are loaded before the clock starts; what they import
    # inside functions is timed. Each case loads only its own compactor's modules,
    # so its peak RSS is its own.
    import pyarrow.parquet  # noqa: F401

    if spec["kind"] == "tglake":
        import chalicelib.compaction  # noqa: F401
    else:
        from benchmarks import original  # noqa: F401

    profiler = None
    if spec.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    if spec["kind"] == "tglake":
        objects, rows = _compact_tglake(spec)
    else:
        objects, rows = _compact_original(spec)
    seconds = time.perf_counter() - started
    if profiler is not None:
        import pstats

        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("cumulative").print_stats(30)
        stats.sort_stats("tottime").print_stats(20)
    print(
        json.dumps(
            {
                "objects": objects,
                "rows": rows,
                "seconds": seconds,
                "rss_mb": common.peak_rss_mb(),
            }
        )
    )


def _store(location: str, spec: dict[str, Any]) -> Any:
    from chalicelib.storage import S3Store, open_store

    endpoint = spec.get("endpoint")
    if not endpoint:
        return open_store(location)
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    connections = max(10, spec["threads"])
    client = common.s3_client(endpoint, connections=connections)
    return S3Store(bucket, prefix, client=client)


def _compact_tglake(spec: dict[str, Any]) -> tuple[int, int]:
    from chalicelib.compaction import Compactor
    from chalicelib.config import Settings

    settings = Settings(
        raw=spec["raw"],
        enriched=spec["enriched"],
        timezone=ZONE,
        read_threads=spec["threads"],
    )
    compactor = Compactor(
        settings, _store(spec["raw"], spec), _store(spec["enriched"], spec)
    )
    result = compactor.compact_day(DAY)
    return result.objects, result.rows


def _compact_original(spec: dict[str, Any]) -> tuple[int, int]:
    from benchmarks import original
    from chalicelib import layout

    raw = _store(spec["raw"], spec)
    enriched = _store(spec["enriched"], spec)
    prefix = layout.day_prefix(DAY)
    keys = [item.key for item in raw.list(prefix) if item.key.endswith(".json")]

    def write(path: Path) -> None:
        enriched.upload_file(prefix + path.name, path)

    columns = original.original_columns
    if spec["kind"] == "original-wide":
        columns = original.wide_columns(ZoneInfo(ZONE))
    rows = original.compact(keys, raw.get, write, columns=columns)
    return len(keys), rows


def _rate(result: dict[str, Any]) -> float:
    return result["objects"] / result["seconds"]


NAMES = {
    "tglake": "tglake",
    "original": "original design (8 columns)",
    "original-wide": "original algorithm, tglake's 30 columns",
}


def _ratio(result: dict[str, Any], base: dict[str, Any] | None) -> str:
    return f"{_rate(result) / _rate(base):,.1f}x" if base else "-"


def folder_table(results: list[dict[str, Any]]) -> str:
    narrow = {r["size"]: r for r in results if r["kind"] == "original"}
    wide = {r["size"]: r for r in results if r["kind"] == "original-wide"}
    rows = []
    for result in results:
        ours = result["kind"] == "tglake"
        rows.append(
            (
                NAMES[result["kind"]],
                f"{result['size']:,}",
                f"{result['objects']:,}",
                f"{result['rows']:,}",
                _seconds(result),
                f"{_rate(result):,.0f}",
                f"{result['rss_mb']:.0f}",
                _ratio(result, narrow.get(result["size"])) if ours else "-",
                _ratio(result, wide.get(result["size"])) if ours else "-",
            )
        )
    return common.markdown_table(
        (
            "compactor",
            "updates",
            "objects",
            "rows",
            "seconds (median of runs)",
            "messages/s",
            "peak RSS MB",
            "vs original (8 col.)",
            "vs original algorithm (30 col.)",
        ),
        rows,
    )


def _seconds(result: dict[str, Any]) -> str:
    runs = result.get("all_seconds", [])
    if len(runs) < 2:
        return f"{result['seconds']:.2f}"
    return f"{result['seconds']:.2f} ({', '.join(f'{r:.2f}' for r in runs)})"


def s3_table(results: list[dict[str, Any]]) -> str:
    rows = [
        (
            f"{result['size']:,}",
            f"{result['objects']:,}",
            str(result["threads"]),
            f"{result['seconds']:.2f}",
            f"{_rate(result):,.0f}",
            f"{result['rss_mb']:.0f}",
        )
        for result in results
    ]
    loads = sorted({(r["size"], r["put_rate"]) for r in results})
    note = "; ".join(f"{size:,}: {rate:.0f} puts/s" for size, rate in loads)
    table = common.markdown_table(
        (
            "updates",
            "objects",
            "reader threads",
            "seconds",
            "messages/s",
            "peak RSS MB",
        ),
        rows,
    )
    return f"{table}\n\nLoading the same server with {LOAD_THREADS} threads: {note}."


def targets(results: list[dict[str, Any]]) -> str:
    """One line per target: met or not, with the number measured."""
    lines = []
    ours = {r["size"]: r for r in results if r["kind"] == "tglake"}
    for kind in ("original", "original-wide"):
        base = {r["size"]: r for r in results if r["kind"] == kind}
        if 10_000 in base and 10_000 in ours:
            ratio = _rate(ours[10_000]) / _rate(base[10_000])
            lines.append(
                _verdict(
                    f">= {TARGET_RATIO:g}x the {NAMES[kind]} at 10,000 (folder)",
                    ratio >= TARGET_RATIO,
                    f"{ratio:,.1f}x",
                )
            )
    for size, result in sorted(ours.items()):
        if size < TARGET_RATE_FROM:
            continue  # a second's fixed costs (imports, lease, pool) dominate
        lines.append(
            _verdict(
                f">= {TARGET_RATE:,.0f} messages/s at {size:,} (folder)",
                _rate(result) >= TARGET_RATE,
                f"{_rate(result):,.0f}/s",
            )
        )
    if TARGET_RSS_SIZE in ours:
        rss = ours[TARGET_RSS_SIZE]["rss_mb"]
        lines.append(
            _verdict(
                f"peak RSS < {TARGET_RSS_MB:g} MB at {TARGET_RSS_SIZE:,} (folder)",
                rss < TARGET_RSS_MB,
                f"{rss:.0f} MB",
            )
        )
    return "\n".join(lines) or "- (no case here checks a target)"


def _verdict(target: str, met: bool, measured: str) -> str:
    return f"- {'MET' if met else 'NOT MET'}: {target}: {measured}"


if __name__ == "__main__":
    main()
