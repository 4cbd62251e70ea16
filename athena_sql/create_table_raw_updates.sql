-- Create the table over the raw layer: every update as Telegram sent it (step 3 of 4).
--
-- Each row is one line of a raw file, read as text and taken apart with Trino's
-- JSON functions (see create_view_all_messages). Like Athena's JSON SerDes, this
-- needs one JSON object per line: Telegram sends each update as one line of JSON
-- and tglake stores those bytes unchanged, one update per file. A file
-- pretty-printed by hand would be read as many broken lines. The field delimiter
-- \001 never occurs in JSON text, so the whole line lands in `line`.
-- Partition projection as for the messages table; filter on context_date, since
-- reading many small JSON files is slower and costs more than Parquet.
--
-- @param raw_location location s3://your-bucket/raw/ The TGLAKE_RAW prefix.
-- @param first_day date 2015-06-24 The first day the projection lists.
CREATE EXTERNAL TABLE IF NOT EXISTS raw_updates (
  line string
)
PARTITIONED BY (context_date string)
ROW FORMAT DELIMITED FIELDS TERMINATED BY '\001'
STORED AS TEXTFILE
LOCATION '{{raw_location}}telegram/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.context_date.type' = 'date',
  'projection.context_date.format' = 'yyyy-MM-dd',
  'projection.context_date.range' = '{{first_day}},NOW',
  'projection.context_date.interval' = '1',
  'projection.context_date.interval.unit' = 'DAYS',
  'storage.location.template' = '{{raw_location}}telegram/context_date=${context_date}/'
)
