"""tglake's Lambda functions: a routing table; the logic lives in chalicelib."""

from __future__ import annotations

from chalice import Chalice, Cron, Rate, Response
from chalice.app import CloudWatchEvent, S3Event

from chalicelib import backlog, config, jobs, layout, runtime

app = Chalice(app_name="tglake")
runtime.configure_logging()
RAW_BUCKET, RAW_EVENT_PREFIX = config.raw_event_source()


@app.route("/webhook", methods=["POST"], content_types=["*/*"])
def webhook() -> Response:
    request = app.current_request
    reply = runtime.handle_webhook(request.headers, request.raw_body)
    return Response(reply.body, status_code=reply.status, headers=reply.headers)


# EventBridge cron is UTC. 03:15 UTC is past local midnight from UTC-3 to UTC+14;
# further west, "yesterday" is one day older, so those lakes see a day later.
@app.schedule(Cron(15, 3, "*", "*", "?", "*"), name="compact_daily")
def compact_daily(event: CloudWatchEvent) -> dict[str, object]:
    # The event's own time: a retried invocation still compacts the same day.
    now = jobs.scheduled_time(event.time)
    result = jobs.compact_yesterday(runtime.settings(), now)
    return {"day": result.day.isoformat(), "rows": result.rows}


@app.schedule(Rate(1, unit=Rate.HOURS), name="compact_dirty")
def compact_dirty(event: CloudWatchEvent) -> dict[str, object]:
    results = jobs.compact_dirty(runtime.settings())
    return {"days": [result.day.isoformat() for result in results]}


@app.on_s3_event(
    bucket=RAW_BUCKET,
    prefix=RAW_EVENT_PREFIX,
    suffix=layout.RAW_SUFFIX,
    events=["s3:ObjectCreated:*"],
    name="note_late_data",
)
def note_late_data(event: S3Event) -> None:
    jobs.note_raw_object(runtime.settings(), event.key)


@app.schedule(Rate(15, unit=Rate.MINUTES), name="watch_backlog")
def watch_backlog(event: CloudWatchEvent) -> dict[str, object]:
    found = backlog.watch_backlog(runtime.settings())
    return found.summary() if found else {"skipped": "no TGLAKE_BOT_TOKEN_PARAMETER"}
