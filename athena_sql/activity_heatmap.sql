-- When do people write: how many messages fall in each hour of each weekday?
--
-- Every cell of the week, Monday first: 7 weekdays x 24 local hours (the lake's
-- time zone), with 0 where nobody wrote, ready to draw as a heatmap. Service
-- messages are not counted.
--
-- @param start date 1970-01-01 First local day, inclusive.
-- @param end date 9999-12-31 Last local day, inclusive.
-- @param table name messages messages (compacted days) or all_messages (also the raw, not yet compacted days).
WITH counts AS (
  SELECT local_weekday, local_hour, count(*) AS messages
  FROM {{table}}
  WHERE context_date BETWEEN '{{start}}' AND '{{end}}'
    AND content_type <> 'service'
  GROUP BY local_weekday, local_hour
),

cells AS (
  SELECT weekday, hour
  FROM UNNEST(sequence(1, 7)) AS w (weekday)
  CROSS JOIN UNNEST(sequence(0, 23)) AS h (hour)
)

SELECT
  c.weekday,
  CASE c.weekday
    WHEN 1 THEN 'Monday'
    WHEN 2 THEN 'Tuesday'
    WHEN 3 THEN 'Wednesday'
    WHEN 4 THEN 'Thursday'
    WHEN 5 THEN 'Friday'
    WHEN 6 THEN 'Saturday'
    WHEN 7 THEN 'Sunday'
  END AS weekday_name,
  c.hour,
  coalesce(n.messages, 0) AS messages
FROM cells AS c
LEFT JOIN counts AS n ON n.local_weekday = c.weekday AND n.local_hour = c.hour
ORDER BY c.weekday, c.hour
