-- Which messages mention a keyword, whatever its case and accents?
--
-- Looks for the keyword inside the text and the caption of every message, after
-- lower-casing and removing accents on both sides, so that "dúvida", "Duvida" and
-- "DÚVIDA" all match. The keyword is a plain string, not a pattern.
--
-- @param keyword text dúvida The word or phrase to look for.
-- @param limit int 100 How many messages to list, oldest first.
-- @param start date 1970-01-01 First local day, inclusive.
-- @param end date 9999-12-31 Last local day, inclusive.
-- @param table name messages messages (compacted days) or all_messages (also the raw, not yet compacted days).
WITH folded AS (
  SELECT
    local_date,
    local_hour,
    sent_at,
    chat_id,
    message_id,
    user_id,
    user_first_name,
    content_type,
    coalesce(text, caption) AS content,
    lower(
      regexp_replace(normalize(concat_ws(' ', text, caption), NFD), '\p{Mn}', '')
    ) AS haystack
  FROM {{table}}
  WHERE context_date BETWEEN '{{start}}' AND '{{end}}'
    AND (text IS NOT NULL OR caption IS NOT NULL)
)

SELECT
  local_date AS day,
  local_hour AS hour,
  chat_id,
  message_id,
  user_id,
  user_first_name AS first_name,
  content_type,
  content
FROM folded
WHERE strpos(
  haystack, lower(regexp_replace(normalize('{{keyword}}', NFD), '\p{Mn}', ''))
) > 0
ORDER BY sent_at, chat_id, message_id
LIMIT {{limit}}
