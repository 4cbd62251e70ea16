"""tglake: Telegram updates captured into a queryable data lake."""
