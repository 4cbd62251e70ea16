-- What kinds of message are sent each day?
--
-- Messages per local day and content type (text, photo, sticker, voice, service,
-- ...), most frequent first within a day, with each type's share of the day.
--
-- @param start date 1970-01-01 First local day, inclusive.
-- @param end date 9999-12-31 Last local day, inclusive.
-- @param table name messages messages (compacted days) or all_messages (also the raw, not yet compacted days).
SELECT
  local_date AS day,
  content_type,
  count(*) AS messages,
  round(
    100 * CAST(count(*) AS double) / sum(count(*)) OVER (PARTITION BY local_date), 1
  ) AS share_pct
FROM {{table}}
WHERE context_date BETWEEN '{{start}}' AND '{{end}}'
GROUP BY local_date, content_type
ORDER BY day, messages DESC, content_type
