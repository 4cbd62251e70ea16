-- How many members joined and left on each day?
--
-- Counted from the raw updates, which name the people: the service messages
-- (new_chat_members, left_chat_member) and, where the bot receives them, the
-- chat_member updates (a status change from left or kicked to member, or back).
-- Telegram may send both for one event, or only one of them (large supergroups
-- hide join messages), so each person counts once per chat, day and direction.
-- Days are local days of the lake's time zone; days without joins or leaves are
-- left out. Reads raw_updates: filter the days to keep the scan small.
--
-- @param start date 1970-01-01 First local day, inclusive.
-- @param end date 9999-12-31 Last local day, inclusive.
WITH updates AS (
  SELECT context_date, line
  FROM raw_updates
  WHERE context_date BETWEEN '{{start}}' AND '{{end}}'
),

-- TRY_CAST: a new_chat_members that is not a list adds no one instead of failing
-- the query; the chat id is read once per update, not once per member.
member_lists AS (
  SELECT
    context_date,
    json_extract_scalar(line, '$.message.chat.id') AS chat_id,
    TRY_CAST(json_extract(line, '$.message.new_chat_members') AS array(json))
      AS members
  FROM updates
  WHERE json_extract(line, '$.message.new_chat_members') IS NOT NULL
),

joined_by_message AS (
  SELECT
    l.context_date,
    l.chat_id,
    json_extract_scalar(member, '$.id') AS user_id,
    'joined' AS direction
  FROM member_lists AS l
  CROSS JOIN UNNEST(l.members) AS t (member)
  WHERE json_extract_scalar(member, '$.id') IS NOT NULL
),

left_by_message AS (
  SELECT
    context_date,
    json_extract_scalar(line, '$.message.chat.id') AS chat_id,
    json_extract_scalar(line, '$.message.left_chat_member.id') AS user_id,
    'left' AS direction
  FROM updates
  WHERE json_extract_scalar(line, '$.message.left_chat_member.id') IS NOT NULL
),

member_changes AS (
  SELECT
    context_date,
    json_extract_scalar(line, '$.chat_member.chat.id') AS chat_id,
    json_extract_scalar(line, '$.chat_member.new_chat_member.user.id') AS user_id,
    json_extract_scalar(line, '$.chat_member.old_chat_member.status') IN (
      'member', 'administrator', 'creator'
    ) OR (
      json_extract_scalar(line, '$.chat_member.old_chat_member.status') = 'restricted'
      AND json_extract_scalar(line, '$.chat_member.old_chat_member.is_member') = 'true'
    ) AS was_member,
    json_extract_scalar(line, '$.chat_member.new_chat_member.status') IN (
      'member', 'administrator', 'creator'
    ) OR (
      json_extract_scalar(line, '$.chat_member.new_chat_member.status') = 'restricted'
      AND json_extract_scalar(line, '$.chat_member.new_chat_member.is_member') = 'true'
    ) AS is_member
  FROM updates
  WHERE json_extract(line, '$.chat_member') IS NOT NULL
),

events AS (
  SELECT context_date, chat_id, user_id, direction FROM joined_by_message
  UNION
  SELECT context_date, chat_id, user_id, direction FROM left_by_message
  UNION
  SELECT context_date, chat_id, user_id, 'joined' AS direction
  FROM member_changes
  WHERE is_member AND NOT was_member
  UNION
  SELECT context_date, chat_id, user_id, 'left' AS direction
  FROM member_changes
  WHERE was_member AND NOT is_member
)

SELECT
  CAST(context_date AS date) AS day,
  count_if(direction = 'joined') AS joined,
  count_if(direction = 'left') AS "left"
FROM events
GROUP BY context_date
ORDER BY day
