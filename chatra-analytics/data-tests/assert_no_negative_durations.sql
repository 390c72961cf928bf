-- Impossible figures: a chat that ends before it starts, a response before the question, a
-- negative wait. Any row returned fails `dbt test`.
select chat_key, 'ends before it starts' as problem
from {{ ref('chats') }}
where ended_at < started_at or duration_seconds < 0

union all

select chat_key, 'negative first response time' as problem
from {{ ref('chats') }}
where first_response_seconds < 0 or first_response_at < first_client_message_at

union all

select chat_key, 'negative wait' as problem
from {{ ref('missed_chats') }}
where waited_minutes < 0
