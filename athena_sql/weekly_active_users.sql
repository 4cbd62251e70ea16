-- How many people write in each week?
--
-- Distinct senders per ISO week (Monday to Sunday, local days), with the week's
-- messages. A week is named by its Monday. Service messages do not make a user
-- active.
--
-- @param start date 1970-01-01 First local day, inclusive.
-- @param end date 9999-12-31 Last local day, inclusive.
-- @param table name messages messages (compacted days) or all_messages (also the raw, not yet compacted days).
SELECT
  date_trunc('week', local_date) AS week_start,
  count(DISTINCT user_id) AS active_users,
  count(*) AS messages
FROM {{table}}
WHERE context_date BETWEEN '{{start}}' AND '{{end}}'
  AND content_type <> 'service'
GROUP BY date_trunc('week', local_date)
ORDER BY week_start
