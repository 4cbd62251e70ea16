-- Who sent the most messages?
--
-- The top users by number of messages, with their share of all messages in the
-- period and the name they had on their latest message. Ties are broken by user id.
-- Service messages are not counted.
--
-- @param limit int 10 How many users to list.
-- @param start date 1970-01-01 First local day, inclusive.
-- @param end date 9999-12-31 Last local day, inclusive.
-- @param table name messages messages (compacted days) or all_messages (also the raw, not yet compacted days).
SELECT
  user_id,
  max_by(user_first_name, sent_at) AS first_name,
  max_by(user_username, sent_at) AS username,
  count(*) AS messages,
  round(100 * CAST(count(*) AS double) / sum(count(*)) OVER (), 1) AS share_pct
FROM {{table}}
WHERE context_date BETWEEN '{{start}}' AND '{{end}}'
  AND content_type <> 'service'
  AND user_id IS NOT NULL
GROUP BY user_id
ORDER BY messages DESC, user_id
LIMIT {{limit}}
