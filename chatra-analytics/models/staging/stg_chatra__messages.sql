-- One row per message fetched from the REST API.
{{ chatra_messages('messages') }}
