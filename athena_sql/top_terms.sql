-- What do people write about: the most frequent words and two-word phrases?
--
-- Words of texts and captions, lower-cased and without accents (so "dúvida" and
-- "duvida" count together), with Portuguese and English stop words removed, and
-- pairs of adjacent words of which neither is a stop word. Mentions, hashtags,
-- commands and links are left out (see top_tags), as are one-letter words and
-- numbers. For each term: how often it occurs and in how many messages. The top
-- ones of each kind; equal counts are ordered alphabetically.
--
-- @param limit int 20 How many words and how many phrases to list.
-- @param start date 1970-01-01 First local day, inclusive.
-- @param end date 9999-12-31 Last local day, inclusive.
-- @param table name messages messages (compacted days) or all_messages (also the raw, not yet compacted days).
WITH stop_words (word) AS (
  VALUES
    ('a'), ('about'), ('again'), ('ai'), ('all'), ('am'), ('an'), ('and'), ('any'),
    ('ao'), ('aos'), ('aquela'), ('aquele'), ('aqui'), ('aquilo'), ('are'), ('as'),
    ('at'), ('ate'), ('be'), ('been'), ('boa'), ('bom'), ('but'), ('by'), ('can'),
    ('com'), ('como'), ('could'), ('da'), ('das'), ('de'), ('dia'), ('did'),
    ('do'), ('does'), ('dos'), ('down'), ('dum'), ('duma'), ('e'), ('ela'),
    ('elas'), ('ele'), ('eles'), ('em'), ('entao'), ('entre'), ('era'), ('essa'),
    ('essas'), ('esse'), ('esses'), ('esta'), ('estao'), ('estar'), ('estas'),
    ('estava'), ('este'), ('estes'), ('estou'), ('eu'), ('foi'), ('for'), ('from'),
    ('ha'), ('had'), ('has'), ('have'), ('he'), ('hello'), ('her'), ('here'),
    ('hi'), ('him'), ('his'), ('how'), ('if'), ('in'), ('into'), ('is'), ('isso'),
    ('isto'), ('it'), ('its'), ('ja'), ('just'), ('la'), ('lhe'), ('lhes'),
    ('mais'), ('mas'), ('me'), ('menos'), ('meu'), ('meus'), ('minha'), ('minhas'),
    ('more'), ('most'), ('muita'), ('muitas'), ('muito'), ('muitos'), ('my'),
    ('na'), ('nao'), ('nas'), ('nem'), ('no'), ('noite'), ('nos'), ('nossa'),
    ('nosso'), ('not'), ('num'), ('numa'), ('o'), ('obrigada'), ('obrigado'),
    ('of'), ('oi'), ('ok'), ('ola'), ('on'), ('once'), ('onde'), ('only'), ('or'),
    ('os'), ('other'), ('ou'), ('our'), ('out'), ('over'), ('own'), ('para'),
    ('pela'), ('pelas'), ('pelo'), ('pelos'), ('please'), ('pois'), ('por'),
    ('porque'), ('pouco'), ('pq'), ('pra'), ('pras'), ('pro'), ('pros'), ('q'),
    ('quais'), ('qual'), ('quando'), ('que'), ('quem'), ('same'), ('sao'), ('se'),
    ('sem'), ('ser'), ('seu'), ('seus'), ('she'), ('should'), ('sim'), ('so'),
    ('sob'), ('sobre'), ('some'), ('sou'), ('sua'), ('suas'), ('such'), ('tambem'),
    ('tarde'), ('tb'), ('tbm'), ('te'), ('tem'), ('tenho'), ('ter'), ('teu'),
    ('than'), ('thanks'), ('that'), ('the'), ('their'), ('them'), ('then'),
    ('there'), ('these'), ('they'), ('this'), ('those'), ('tinha'), ('to'),
    ('too'), ('tu'), ('tua'), ('um'), ('uma'), ('umas'), ('uns'), ('up'), ('us'),
    ('vai'), ('valeu'), ('vc'), ('vcs'), ('very'), ('voce'), ('voces'), ('vos'),
    ('vou'), ('was'), ('we'), ('were'), ('what'), ('when'), ('where'), ('which'),
    ('who'), ('whom'), ('why'), ('will'), ('with'), ('would'), ('yes'), ('you'),
    ('your')
),

folded AS (
  SELECT
    chat_id,
    message_id,
    regexp_replace(
      lower(
        regexp_replace(normalize(concat_ws(' ', text, caption), NFD), '\p{Mn}', '')
      ),
      '(^|\s)(@|#|/|https?://)\S*',
      ' '
    ) AS content
  FROM {{table}}
  WHERE context_date BETWEEN '{{start}}' AND '{{end}}'
    AND content_type <> 'service'
    AND (text IS NOT NULL OR caption IS NOT NULL)
),

words AS (
  SELECT
    f.chat_id,
    f.message_id,
    t.word,
    t.position,
    length(t.word) > 1
    AND regexp_like(t.word, '\p{L}')
    AND t.word NOT IN (SELECT word FROM stop_words) AS is_term
  FROM folded AS f
  CROSS JOIN UNNEST(regexp_extract_all(f.content, '[\p{L}\p{N}]+'))
    WITH ORDINALITY AS t (word, position)
),

terms AS (
  SELECT 'word' AS kind, word AS term, chat_id, message_id
  FROM words
  WHERE is_term
  UNION ALL
  SELECT 'phrase' AS kind, a.word || ' ' || b.word AS term, a.chat_id, a.message_id
  FROM words AS a
  JOIN words AS b
    ON b.chat_id = a.chat_id
    AND b.message_id = a.message_id
    AND b.position = a.position + 1
  WHERE a.is_term AND b.is_term
),

ranked AS (
  SELECT
    kind,
    term,
    count(*) AS occurrences,
    count(DISTINCT CAST(chat_id AS varchar) || ':' || CAST(message_id AS varchar))
      AS messages,
    row_number() OVER (PARTITION BY kind ORDER BY count(*) DESC, term) AS position
  FROM terms
  GROUP BY kind, term
)

SELECT kind, term, occurrences, messages
FROM ranked
WHERE position <= {{limit}}
ORDER BY kind DESC, position
