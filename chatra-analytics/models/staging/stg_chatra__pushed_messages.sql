-- One row per pushed message fetched from the REST API (what target-chatra-push sent, read back).
{{ chatra_messages('pushed_messages') }}
