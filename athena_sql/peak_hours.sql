-- At which hours of the day is the group busiest?
--
-- Messages per local hour (0-23, the lake's time zone), busiest first, with each
-- hour's share of the period's messages and its rank (equal counts share a rank).
-- Hours without messages are left out. Service messages are not counted.
--
-- @param start date 1970-01-01 First local day, inclusive.
-- @param end date 9999-12-31 Last local day, inclusive.
-- @param table name messages messages (compacted days) or all_messages (also the raw, not yet compacted days).
SELECT
  local_hour AS hour,
  count(*) AS messages,
  round(100 * CAST(count(*) AS double) / sum(count(*)) OVER (), 1) AS share_pct,
  rank() OVER (ORDER BY count(*) DESC) AS rank
FROM {{table}}
WHERE context_date BETWEEN '{{start}}' AND '{{end}}'
  AND content_type <> 'service'
GROUP BY local_hour
ORDER BY messages DESC, hour
