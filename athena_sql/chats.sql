-- Which chats are in the lake, with a group and the supergroup it became as one?
--
-- When a group becomes a supergroup, Telegram gives it a new id; the old group's
-- last message names the new id (migrate_to_chat_id) and the supergroup's first
-- names the old one (migrate_from_chat_id). Here both ids count as one chat, named
-- by its current id, with the old id in migrated_from. Service messages are not
-- counted as messages.
--
-- @param start date 1970-01-01 First local day, inclusive.
-- @param end date 9999-12-31 Last local day, inclusive.
-- @param table name messages messages (compacted days) or all_messages (also the raw, not yet compacted days).
WITH migrations AS (
  SELECT chat_id AS old_id, migrate_to_chat_id AS new_id
  FROM {{table}}
  WHERE migrate_to_chat_id IS NOT NULL
  UNION
  SELECT migrate_from_chat_id AS old_id, chat_id AS new_id
  FROM {{table}}
  WHERE migrate_from_chat_id IS NOT NULL
),

period AS (
  SELECT
    coalesce(m.new_id, t.chat_id) AS chat_key,
    t.chat_id,
    t.chat_type,
    t.chat_title,
    t.content_type,
    t.local_date,
    t.sent_at
  FROM {{table}} AS t
  LEFT JOIN migrations AS m ON t.chat_id = m.old_id
  WHERE t.context_date BETWEEN '{{start}}' AND '{{end}}'
)

SELECT
  chat_key AS chat_id,
  max_by(chat_type, sent_at) AS chat_type,
  max_by(chat_title, sent_at) AS title,
  max(CASE WHEN chat_id <> chat_key THEN chat_id END) AS migrated_from,
  count_if(content_type <> 'service') AS messages,
  min(local_date) AS first_day,
  max(local_date) AS last_day
FROM period
GROUP BY chat_key
ORDER BY messages DESC, chat_id
