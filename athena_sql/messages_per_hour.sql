-- How many messages were sent in each hour, by weekday and week number?
--
-- One row per ISO week, weekday (1 = Monday .. 7 = Sunday) and local hour (0-23)
-- that has messages, in the lake's time zone. Weeks are ISO weeks: week_year is
-- the year the week belongs to, which differs from the calendar year around
-- New Year. Service messages are not counted.
--
-- @param start date 1970-01-01 First local day, inclusive.
-- @param end date 9999-12-31 Last local day, inclusive.
-- @param table name messages messages (compacted days) or all_messages (also the raw, not yet compacted days).
SELECT
  year_of_week(local_date) AS week_year,
  week(local_date) AS week,
  local_weekday AS weekday,
  CASE local_weekday
    WHEN 1 THEN 'Monday'
    WHEN 2 THEN 'Tuesday'
    WHEN 3 THEN 'Wednesday'
    WHEN 4 THEN 'Thursday'
    WHEN 5 THEN 'Friday'
    WHEN 6 THEN 'Saturday'
    WHEN 7 THEN 'Sunday'
  END AS weekday_name,
  local_hour AS hour,
  count(*) AS messages
FROM {{table}}
WHERE context_date BETWEEN '{{start}}' AND '{{end}}'
  AND content_type <> 'service'
GROUP BY year_of_week(local_date), week(local_date), local_weekday, local_hour
ORDER BY week_year, week, weekday, hour
