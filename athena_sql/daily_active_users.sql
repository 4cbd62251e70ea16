-- How many people write on each day?
--
-- Distinct senders per local day (the lake's time zone), with the day's messages.
-- Service messages (a join, a leave) do not make a user active.
--
-- @param start date 1970-01-01 First local day, inclusive.
-- @param end date 9999-12-31 Last local day, inclusive.
-- @param table name messages messages (compacted days) or all_messages (also the raw, not yet compacted days).
SELECT
  local_date AS day,
  count(DISTINCT user_id) AS active_users,
  count(*) AS messages
FROM {{table}}
WHERE context_date BETWEEN '{{start}}' AND '{{end}}'
  AND content_type <> 'service'
GROUP BY local_date
ORDER BY day
