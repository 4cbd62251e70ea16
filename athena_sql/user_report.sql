-- What has each user done in the group?
--
-- One row per user (or only the user given): messages, active days, the first and
-- last of them, the local hour they write most in (the earliest on a tie), replies
-- they sent, replies they received from others, questions they asked (messages
-- with a "?"), and media they sent (anything but text). Service messages are not
-- counted. user_id 0 lists every user, most active first.
--
-- @param user_id int 0 One user's id, or 0 for every user.
-- @param start date 1970-01-01 First local day, inclusive.
-- @param end date 9999-12-31 Last local day, inclusive.
-- @param table name messages messages (compacted days) or all_messages (also the raw, not yet compacted days).
WITH period AS (
  SELECT *
  FROM {{table}}
  WHERE context_date BETWEEN '{{start}}' AND '{{end}}'
    AND content_type <> 'service'
    AND user_id IS NOT NULL
),

hours AS (
  SELECT
    user_id,
    local_hour,
    row_number() OVER (
      PARTITION BY user_id ORDER BY count(*) DESC, local_hour
    ) AS position
  FROM period
  GROUP BY user_id, local_hour
),

received AS (
  SELECT reply_to_user_id AS user_id, count(*) AS replies_received
  FROM period
  WHERE reply_to_user_id IS NOT NULL AND reply_to_user_id <> user_id
  GROUP BY reply_to_user_id
),

users AS (
  SELECT
    user_id,
    max_by(user_first_name, sent_at) AS first_name,
    max_by(user_username, sent_at) AS username,
    count(*) AS messages,
    count(DISTINCT local_date) AS active_days,
    min(local_date) AS first_day,
    max(local_date) AS last_day,
    count_if(reply_to_message_id IS NOT NULL) AS replies_sent,
    count_if(strpos(concat_ws(' ', text, caption), '?') > 0) AS questions,
    count_if(content_type <> 'text') AS media
  FROM period
  GROUP BY user_id
)

SELECT
  u.user_id,
  u.first_name,
  u.username,
  u.messages,
  u.active_days,
  u.first_day,
  u.last_day,
  h.local_hour AS busiest_hour,
  u.replies_sent,
  coalesce(r.replies_received, 0) AS replies_received,
  u.questions,
  u.media
FROM users AS u
JOIN hours AS h ON h.user_id = u.user_id AND h.position = 1
LEFT JOIN received AS r ON r.user_id = u.user_id
WHERE {{user_id}} = 0 OR u.user_id = {{user_id}}
ORDER BY u.messages DESC, u.user_id
