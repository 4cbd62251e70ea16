-- Create the enriched table: one Parquet file per local day (step 2 of 4).
--
-- Partition projection lists the days by itself, so no MSCK REPAIR TABLE is ever
-- needed: every day from first_day to today (UTC) is a partition, and a day outside
-- that range silently returns nothing. context_date is a string: filter it with
-- 'YYYY-MM-DD' to read only the days you need (Athena bills the bytes it scans).
-- The columns are exactly those of chalicelib/schema.py; `date` is a reserved word
-- in table definitions.
--
-- @param enriched_location location s3://your-bucket/enriched/ The TGLAKE_ENRICHED prefix.
-- @param first_day date 2015-06-24 The first day the projection lists.
CREATE EXTERNAL TABLE IF NOT EXISTS messages (
  message_id             bigint,
  user_id                bigint,
  user_is_bot            boolean,
  user_first_name        string,
  chat_id                bigint,
  chat_type              string,
  text                   string,
  `date`                 bigint,
  update_id              bigint,
  update_kind            string,
  sent_at                timestamp,
  edit_date              bigint,
  content_type           string,
  service_type           string,
  caption                string,
  user_last_name         string,
  user_username          string,
  chat_title             string,
  sender_chat_id         bigint,
  message_thread_id      bigint,
  reply_to_message_id    bigint,
  reply_to_user_id       bigint,
  is_forwarded           boolean,
  new_member_count       int,
  left_member_id         bigint,
  migrate_to_chat_id     bigint,
  migrate_from_chat_id   bigint,
  local_date             date,
  local_hour             int,
  local_weekday          int
)
PARTITIONED BY (context_date string)
STORED AS PARQUET
LOCATION '{{enriched_location}}telegram/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.context_date.type' = 'date',
  'projection.context_date.format' = 'yyyy-MM-dd',
  'projection.context_date.range' = '{{first_day}},NOW',
  'projection.context_date.interval' = '1',
  'projection.context_date.interval.unit' = 'DAYS',
  'storage.location.template' = '{{enriched_location}}telegram/context_date=${context_date}/'
)
