-- Which hashtags and bot commands are used most?
--
-- Hashtags (#word) and commands (/word at the start of the text or after a space;
-- a /command@botname counts as /command) from texts and captions, lower-cased and
-- without accents, so #Dúvida and #duvida are one tag. For each: how often it was
-- used and by how many people. The top ones of each kind.
--
-- @param limit int 10 How many hashtags and how many commands to list.
-- @param start date 1970-01-01 First local day, inclusive.
-- @param end date 9999-12-31 Last local day, inclusive.
-- @param table name messages messages (compacted days) or all_messages (also the raw, not yet compacted days).
WITH folded AS (
  SELECT
    user_id,
    lower(
      regexp_replace(normalize(concat_ws(' ', text, caption), NFD), '\p{Mn}', '')
    ) AS content
  FROM {{table}}
  WHERE context_date BETWEEN '{{start}}' AND '{{end}}'
    AND (text IS NOT NULL OR caption IS NOT NULL)
),

tags AS (
  SELECT 'hashtag' AS kind, tag, user_id
  FROM folded
  CROSS JOIN UNNEST(regexp_extract_all(content, '#[\p{L}\p{N}_]+')) AS t (tag)
  UNION ALL
  SELECT 'command' AS kind, tag, user_id
  FROM folded
  CROSS JOIN UNNEST(
    regexp_extract_all(content, '(?:^|\s)(/[a-z0-9_]+)', 1)
  ) AS t (tag)
),

ranked AS (
  SELECT
    kind,
    tag,
    count(*) AS uses,
    count(DISTINCT user_id) AS users,
    row_number() OVER (PARTITION BY kind ORDER BY count(*) DESC, tag) AS position
  FROM tags
  GROUP BY kind, tag
)

SELECT kind, tag, uses, users
FROM ranked
WHERE position <= {{limit}}
ORDER BY kind, position
