-- How many messages were sent on each day?
--
-- One row per local day (the lake's time zone) that has messages. Service messages
-- (joins, leaves, pins, migrations) are not counted; an edited message counts once.
--
-- @param start date 1970-01-01 First local day, inclusive.
-- @param end date 9999-12-31 Last local day, inclusive.
-- @param table name messages messages (compacted days) or all_messages (also the raw, not yet compacted days).
SELECT
  local_date AS day,
  count(*) AS messages
FROM {{table}}
WHERE context_date BETWEEN '{{start}}' AND '{{end}}'
  AND content_type <> 'service'
GROUP BY local_date
ORDER BY day
