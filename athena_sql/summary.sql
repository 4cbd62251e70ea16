-- What does the period look like at a glance?
--
-- One row: messages (service messages apart), distinct senders, chats (a group and
-- the supergroup it became count as one), days with messages, the first and last
-- of those days, messages per active day, edited messages, media messages
-- (anything but text), replies, and service messages.
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
    t.*,
    coalesce(m.new_id, t.chat_id) AS chat_key
  FROM {{table}} AS t
  LEFT JOIN migrations AS m ON t.chat_id = m.old_id
  WHERE t.context_date BETWEEN '{{start}}' AND '{{end}}'
)

SELECT
  count_if(content_type <> 'service') AS messages,
  count(DISTINCT CASE WHEN content_type <> 'service' THEN user_id END) AS users,
  count(DISTINCT chat_key) AS chats,
  count(DISTINCT CASE WHEN content_type <> 'service' THEN local_date END)
    AS active_days,
  min(CASE WHEN content_type <> 'service' THEN local_date END) AS first_day,
  max(CASE WHEN content_type <> 'service' THEN local_date END) AS last_day,
  round(
    CAST(count_if(content_type <> 'service') AS double) / nullif(
      count(DISTINCT CASE WHEN content_type <> 'service' THEN local_date END), 0
    ),
    2
  ) AS messages_per_day,
  count_if(edit_date IS NOT NULL) AS edited,
  count_if(content_type NOT IN ('text', 'service')) AS media,
  count_if(content_type <> 'service' AND reply_to_message_id IS NOT NULL) AS replies,
  count_if(content_type = 'service') AS service_messages
FROM period
