-- Create the view of every message, compacted or not, each counted once (step 4 of 4).
--
-- Days that have a Parquet file come from the messages table; days not compacted
-- yet (today, usually) come from raw_updates, where each message's latest version
-- wins as in compaction: the latest edit_date, then an edit over the original, then
-- the higher update_id. The columns are those of messages. Query it like messages,
-- with a filter on context_date: without one, Athena reads every raw file.
-- The time zone must be the lake's TGLAKE_TIMEZONE (local_date, local_hour and
-- local_weekday of raw rows are computed in it).
--
-- @param timezone zone UTC The lake's time zone (TGLAKE_TIMEZONE).
CREATE OR REPLACE VIEW all_messages AS
WITH updates AS (
  SELECT
    context_date,
    line,
    CASE
      WHEN json_extract(line, '$.message') IS NOT NULL THEN 'message'
      WHEN json_extract(line, '$.edited_message') IS NOT NULL THEN 'edited_message'
      WHEN json_extract(line, '$.channel_post') IS NOT NULL THEN 'channel_post'
      WHEN json_extract(line, '$.edited_channel_post') IS NOT NULL
        THEN 'edited_channel_post'
    END AS update_kind,
    coalesce(
      json_extract(line, '$.message'),
      json_extract(line, '$.edited_message'),
      json_extract(line, '$.channel_post'),
      json_extract(line, '$.edited_channel_post')
    ) AS m
  FROM raw_updates
  WHERE context_date NOT IN (SELECT DISTINCT context_date FROM messages)
),

fields AS (
  SELECT
    context_date,
    line,
    update_kind,
    m,
    try_cast(json_extract_scalar(line, '$.update_id') AS bigint) AS update_id,
    try_cast(json_extract_scalar(m, '$.message_id') AS bigint) AS message_id,
    try_cast(json_extract_scalar(m, '$.chat.id') AS bigint) AS chat_id,
    try_cast(json_extract_scalar(m, '$.date') AS bigint) AS unix_date,
    try_cast(json_extract_scalar(m, '$.edit_date') AS bigint) AS unix_edit_date,
    -- The first key present decides the content type, in the order of
    -- CONTENT_KEYS then SERVICE_KEYS in chalicelib/updates.py.
    CASE
      WHEN json_format(json_extract(m, '$.text')) NOT IN ('null', 'false') THEN 'text'
      WHEN json_format(json_extract(m, '$.animation')) NOT IN ('null', 'false') THEN 'animation'
      WHEN json_format(json_extract(m, '$.photo')) NOT IN ('null', 'false') THEN 'photo'
      WHEN json_format(json_extract(m, '$.video')) NOT IN ('null', 'false') THEN 'video'
      WHEN json_format(json_extract(m, '$.video_note')) NOT IN ('null', 'false') THEN 'video_note'
      WHEN json_format(json_extract(m, '$.voice')) NOT IN ('null', 'false') THEN 'voice'
      WHEN json_format(json_extract(m, '$.audio')) NOT IN ('null', 'false') THEN 'audio'
      WHEN json_format(json_extract(m, '$.document')) NOT IN ('null', 'false') THEN 'document'
      WHEN json_format(json_extract(m, '$.sticker')) NOT IN ('null', 'false') THEN 'sticker'
      WHEN json_format(json_extract(m, '$.story')) NOT IN ('null', 'false') THEN 'story'
      WHEN json_format(json_extract(m, '$.dice')) NOT IN ('null', 'false') THEN 'dice'
      WHEN json_format(json_extract(m, '$.poll')) NOT IN ('null', 'false') THEN 'poll'
      WHEN json_format(json_extract(m, '$.venue')) NOT IN ('null', 'false') THEN 'venue'
      WHEN json_format(json_extract(m, '$.location')) NOT IN ('null', 'false') THEN 'location'
      WHEN json_format(json_extract(m, '$.contact')) NOT IN ('null', 'false') THEN 'contact'
      WHEN json_format(json_extract(m, '$.game')) NOT IN ('null', 'false') THEN 'game'
      WHEN json_format(json_extract(m, '$.invoice')) NOT IN ('null', 'false') THEN 'invoice'
      WHEN json_format(json_extract(m, '$.paid_media')) NOT IN ('null', 'false') THEN 'paid_media'
      WHEN json_format(json_extract(m, '$.giveaway')) NOT IN ('null', 'false') THEN 'giveaway'
      WHEN json_format(json_extract(m, '$.new_chat_members')) NOT IN ('null', 'false') THEN 'new_chat_members'
      WHEN json_format(json_extract(m, '$.left_chat_member')) NOT IN ('null', 'false') THEN 'left_chat_member'
      WHEN json_format(json_extract(m, '$.new_chat_title')) NOT IN ('null', 'false') THEN 'new_chat_title'
      WHEN json_format(json_extract(m, '$.new_chat_photo')) NOT IN ('null', 'false') THEN 'new_chat_photo'
      WHEN json_format(json_extract(m, '$.delete_chat_photo')) NOT IN ('null', 'false') THEN 'delete_chat_photo'
      WHEN json_format(json_extract(m, '$.group_chat_created')) NOT IN ('null', 'false') THEN 'group_chat_created'
      WHEN json_format(json_extract(m, '$.supergroup_chat_created')) NOT IN ('null', 'false') THEN 'supergroup_chat_created'
      WHEN json_format(json_extract(m, '$.channel_chat_created')) NOT IN ('null', 'false') THEN 'channel_chat_created'
      WHEN json_format(json_extract(m, '$.migrate_to_chat_id')) NOT IN ('null', 'false') THEN 'migrate_to_chat_id'
      WHEN json_format(json_extract(m, '$.migrate_from_chat_id')) NOT IN ('null', 'false') THEN 'migrate_from_chat_id'
      WHEN json_format(json_extract(m, '$.pinned_message')) NOT IN ('null', 'false') THEN 'pinned_message'
      WHEN json_format(json_extract(m, '$.message_auto_delete_timer_changed')) NOT IN ('null', 'false') THEN 'message_auto_delete_timer_changed'
      WHEN json_format(json_extract(m, '$.forum_topic_created')) NOT IN ('null', 'false') THEN 'forum_topic_created'
      WHEN json_format(json_extract(m, '$.forum_topic_edited')) NOT IN ('null', 'false') THEN 'forum_topic_edited'
      WHEN json_format(json_extract(m, '$.forum_topic_closed')) NOT IN ('null', 'false') THEN 'forum_topic_closed'
      WHEN json_format(json_extract(m, '$.forum_topic_reopened')) NOT IN ('null', 'false') THEN 'forum_topic_reopened'
      WHEN json_format(json_extract(m, '$.general_forum_topic_hidden')) NOT IN ('null', 'false') THEN 'general_forum_topic_hidden'
      WHEN json_format(json_extract(m, '$.general_forum_topic_unhidden')) NOT IN ('null', 'false') THEN 'general_forum_topic_unhidden'
      WHEN json_format(json_extract(m, '$.video_chat_scheduled')) NOT IN ('null', 'false') THEN 'video_chat_scheduled'
      WHEN json_format(json_extract(m, '$.video_chat_started')) NOT IN ('null', 'false') THEN 'video_chat_started'
      WHEN json_format(json_extract(m, '$.video_chat_ended')) NOT IN ('null', 'false') THEN 'video_chat_ended'
      WHEN json_format(json_extract(m, '$.video_chat_participants_invited')) NOT IN ('null', 'false') THEN 'video_chat_participants_invited'
      WHEN json_format(json_extract(m, '$.write_access_allowed')) NOT IN ('null', 'false') THEN 'write_access_allowed'
      WHEN json_format(json_extract(m, '$.users_shared')) NOT IN ('null', 'false') THEN 'users_shared'
      WHEN json_format(json_extract(m, '$.chat_shared')) NOT IN ('null', 'false') THEN 'chat_shared'
      WHEN json_format(json_extract(m, '$.boost_added')) NOT IN ('null', 'false') THEN 'boost_added'
      WHEN json_format(json_extract(m, '$.chat_background_set')) NOT IN ('null', 'false') THEN 'chat_background_set'
      WHEN json_format(json_extract(m, '$.successful_payment')) NOT IN ('null', 'false') THEN 'successful_payment'
      WHEN json_format(json_extract(m, '$.proximity_alert_triggered')) NOT IN ('null', 'false') THEN 'proximity_alert_triggered'
    END AS first_key
  FROM updates
  WHERE update_kind IS NOT NULL
),

versions AS (
  SELECT
    message_id,
    try_cast(json_extract_scalar(m, '$.from.id') AS bigint) AS user_id,
    try_cast(json_extract_scalar(m, '$.from.is_bot') AS boolean) AS user_is_bot,
    json_extract_scalar(m, '$.from.first_name') AS user_first_name,
    chat_id,
    json_extract_scalar(m, '$.chat.type') AS chat_type,
    json_extract_scalar(m, '$.text') AS text,
    unix_date AS "date",
    update_id,
    update_kind,
    CASE
      WHEN unix_date > 0 AND unix_date < 34359738368
        THEN CAST(from_unixtime(unix_date) AS timestamp)
    END AS sent_at,
    CASE
      WHEN unix_edit_date > 0 AND unix_edit_date < 34359738368 THEN unix_edit_date
    END AS edit_date,
    CASE
      WHEN first_key IN (
        'new_chat_members',
        'left_chat_member',
        'new_chat_title',
        'new_chat_photo',
        'delete_chat_photo',
        'group_chat_created',
        'supergroup_chat_created',
        'channel_chat_created',
        'migrate_to_chat_id',
        'migrate_from_chat_id',
        'pinned_message',
        'message_auto_delete_timer_changed',
        'forum_topic_created',
        'forum_topic_edited',
        'forum_topic_closed',
        'forum_topic_reopened',
        'general_forum_topic_hidden',
        'general_forum_topic_unhidden',
        'video_chat_scheduled',
        'video_chat_started',
        'video_chat_ended',
        'video_chat_participants_invited',
        'write_access_allowed',
        'users_shared',
        'chat_shared',
        'boost_added',
        'chat_background_set',
        'successful_payment',
        'proximity_alert_triggered'
      ) THEN 'service'
      ELSE coalesce(first_key, 'other')
    END AS content_type,
    CASE
      WHEN first_key IN (
        'new_chat_members',
        'left_chat_member',
        'new_chat_title',
        'new_chat_photo',
        'delete_chat_photo',
        'group_chat_created',
        'supergroup_chat_created',
        'channel_chat_created',
        'migrate_to_chat_id',
        'migrate_from_chat_id',
        'pinned_message',
        'message_auto_delete_timer_changed',
        'forum_topic_created',
        'forum_topic_edited',
        'forum_topic_closed',
        'forum_topic_reopened',
        'general_forum_topic_hidden',
        'general_forum_topic_unhidden',
        'video_chat_scheduled',
        'video_chat_started',
        'video_chat_ended',
        'video_chat_participants_invited',
        'write_access_allowed',
        'users_shared',
        'chat_shared',
        'boost_added',
        'chat_background_set',
        'successful_payment',
        'proximity_alert_triggered'
      ) THEN first_key
    END AS service_type,
    json_extract_scalar(m, '$.caption') AS caption,
    json_extract_scalar(m, '$.from.last_name') AS user_last_name,
    json_extract_scalar(m, '$.from.username') AS user_username,
    json_extract_scalar(m, '$.chat.title') AS chat_title,
    try_cast(json_extract_scalar(m, '$.sender_chat.id') AS bigint) AS sender_chat_id,
    try_cast(json_extract_scalar(m, '$.message_thread_id') AS bigint)
      AS message_thread_id,
    try_cast(json_extract_scalar(m, '$.reply_to_message.message_id') AS bigint)
      AS reply_to_message_id,
    try_cast(json_extract_scalar(m, '$.reply_to_message.from.id') AS bigint)
      AS reply_to_user_id,
    (
      json_extract(m, '$.forward_origin') IS NOT NULL
      AND json_format(json_extract(m, '$.forward_origin')) <> 'null'
    ) OR (
      json_extract(m, '$.forward_date') IS NOT NULL
      AND json_format(json_extract(m, '$.forward_date')) <> 'null'
    ) OR (
      json_extract(m, '$.forward_from') IS NOT NULL
      AND json_format(json_extract(m, '$.forward_from')) <> 'null'
    ) OR (
      json_extract(m, '$.forward_from_chat') IS NOT NULL
      AND json_format(json_extract(m, '$.forward_from_chat')) <> 'null'
    ) AS is_forwarded,
    CAST(
      coalesce(json_array_length(json_extract(m, '$.new_chat_members')), 0)
      AS integer
    ) AS new_member_count,
    try_cast(json_extract_scalar(m, '$.left_chat_member.id') AS bigint)
      AS left_member_id,
    try_cast(json_extract_scalar(m, '$.migrate_to_chat_id') AS bigint)
      AS migrate_to_chat_id,
    try_cast(json_extract_scalar(m, '$.migrate_from_chat_id') AS bigint)
      AS migrate_from_chat_id,
    CASE
      WHEN unix_date > 0 AND unix_date < 34359738368
        THEN CAST(from_unixtime(unix_date, '{{timezone}}') AS date)
    END AS local_date,
    CASE
      WHEN unix_date > 0 AND unix_date < 34359738368
        THEN CAST(hour(from_unixtime(unix_date, '{{timezone}}')) AS integer)
    END AS local_hour,
    CASE
      WHEN unix_date > 0 AND unix_date < 34359738368
        THEN CAST(day_of_week(from_unixtime(unix_date, '{{timezone}}')) AS integer)
    END AS local_weekday,
    context_date,
    row_number() OVER (
      PARTITION BY context_date, chat_id, message_id
      ORDER BY
        coalesce(unix_edit_date, 0) DESC,
        CASE WHEN update_kind LIKE 'edited%' THEN 1 ELSE 0 END DESC,
        update_id DESC,
        line DESC
    ) AS version
  FROM fields
  WHERE message_id IS NOT NULL AND chat_id IS NOT NULL AND update_id IS NOT NULL
)

SELECT
  message_id,
  user_id,
  user_is_bot,
  user_first_name,
  chat_id,
  chat_type,
  text,
  "date",
  update_id,
  update_kind,
  sent_at,
  edit_date,
  content_type,
  service_type,
  caption,
  user_last_name,
  user_username,
  chat_title,
  sender_chat_id,
  message_thread_id,
  reply_to_message_id,
  reply_to_user_id,
  is_forwarded,
  new_member_count,
  left_member_id,
  migrate_to_chat_id,
  migrate_from_chat_id,
  local_date,
  local_hour,
  local_weekday,
  context_date
FROM messages
UNION ALL
SELECT
  message_id,
  user_id,
  user_is_bot,
  user_first_name,
  chat_id,
  chat_type,
  text,
  "date",
  update_id,
  update_kind,
  sent_at,
  edit_date,
  content_type,
  service_type,
  caption,
  user_last_name,
  user_username,
  chat_title,
  sender_chat_id,
  message_thread_id,
  reply_to_message_id,
  reply_to_user_id,
  is_forwarded,
  new_member_count,
  left_member_id,
  migrate_to_chat_id,
  migrate_from_chat_id,
  local_date,
  local_hour,
  local_weekday,
  context_date
FROM versions
WHERE version = 1
