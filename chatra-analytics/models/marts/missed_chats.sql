-- Chats whose client has waited longer than `missed_chat_minutes` (up to `as_of`, default now)
-- with no agent reply at all and no follow-up sent since the chat started: the segment the
-- follow-up-missed-chats job sends one pushed message to, keyed on chat_key.
{{ config(post_hook="{{ export_jsonl(setting('missed_chats_export')) }}") }}

with measured as (
    select
        chats.*,
        {{ as_of() }} as as_of,
        {{ seconds_between('chats.first_client_message_at', as_of()) }} / 60.0 as waited_minutes
    from {{ ref('chats') }} as chats
    where chats.status = 'unanswered'
        and chats.followed_up_at is null
)

select
    measured.chat_key,
    measured.chat_id,
    measured.client_id,
    coalesce(client.displayed_name, 'there') as client_name,
    measured.started_at,
    measured.first_client_message_at,
    measured.last_client_message_at,
    measured.client_messages,
    measured.last_client_text,
    cast(measured.waited_minutes as double precision) as waited_minutes,
    measured.as_of
from measured
left join {{ ref('stg_chatra__clients') }} as client on client.client_id = measured.client_id
where measured.client_id is not null
    and measured.waited_minutes > {{ setting_number('missed_chat_minutes') }}
