-- Do questions get answered, and how fast?
--
-- A question is a message whose text or caption contains "?". It is answered when
-- another user replies to it (a reply of the asker to their own question does
-- not count). For the answered ones: the median and the 90th percentile of the time
-- to the first such reply, in seconds, computed exactly with linear interpolation
-- between ranks (as percentile_cont), not with approx_percentile, so that Athena
-- and DuckDB agree. Replies are looked for from start onwards, also after end.
--
-- @param start date 1970-01-01 First local day of the questions, inclusive.
-- @param end date 9999-12-31 Last local day of the questions, inclusive.
-- @param table name messages messages (compacted days) or all_messages (also the raw, not yet compacted days).
WITH questions AS (
  SELECT chat_id, message_id, user_id, "date"
  FROM {{table}}
  WHERE context_date BETWEEN '{{start}}' AND '{{end}}'
    AND content_type <> 'service'
    AND strpos(concat_ws(' ', text, caption), '?') > 0
),

first_replies AS (
  SELECT
    q.chat_id,
    q.message_id,
    min(r."date") - q."date" AS seconds
  FROM questions AS q
  JOIN {{table}} AS r
    ON r.chat_id = q.chat_id
    AND r.reply_to_message_id = q.message_id
    AND r.user_id <> q.user_id
  WHERE r.context_date >= '{{start}}'
  GROUP BY q.chat_id, q.message_id, q."date"
),

ranked AS (
  SELECT
    CAST(seconds AS double) AS seconds,
    row_number() OVER (ORDER BY seconds) AS position,
    1 + 0.5e0 * (count(*) OVER () - 1) AS median_at,
    1 + 0.9e0 * (count(*) OVER () - 1) AS p90_at
  FROM first_replies
),

percentiles AS (
  SELECT
    sum(
      CASE
        WHEN position = floor(median_at)
          THEN seconds * (1 - (median_at - floor(median_at)))
        WHEN position = floor(median_at) + 1
          THEN seconds * (median_at - floor(median_at))
        ELSE 0
      END
    ) AS median_seconds,
    sum(
      CASE
        WHEN position = floor(p90_at)
          THEN seconds * (1 - (p90_at - floor(p90_at)))
        WHEN position = floor(p90_at) + 1
          THEN seconds * (p90_at - floor(p90_at))
        ELSE 0
      END
    ) AS p90_seconds
  FROM ranked
)

SELECT
  (SELECT count(*) FROM questions) AS questions,
  (SELECT count(*) FROM first_replies) AS answered,
  round(
    100 * CAST((SELECT count(*) FROM first_replies) AS double)
    / nullif((SELECT count(*) FROM questions), 0),
    1
  ) AS answered_pct,
  round(median_seconds, 1) AS median_seconds,
  round(p90_seconds, 1) AS p90_seconds
FROM percentiles
