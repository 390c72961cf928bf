-- A table: chats reads it five times and agent_daily once more, and its window functions
-- over every message would run again for each read of a view.
{{ config(materialized='table') }}

-- The messages of conversations, each assigned to its chat: Chatra's chat ID is kept across a
-- client's visits, so messages of one chat ID more than `chat_gap_hours` apart start a new
-- chat. Pushed messages and follow-ups are not part of the conversation (see int_follow_ups).
with messages as (
    select *
    from {{ ref('stg_chatra__chat_messages') }}
    where sent_at is not null
        and not is_pushed
        and coalesce(received_from, '') <> {{ setting_literal('follow_up_received_from') }}
),

ordered as (
    select
        *,
        lag(sent_at) over (
            partition by chat_id order by sent_at, seq, message_key
        ) as previous_sent_at
    from messages
),

numbered as (
    select
        *,
        sum(
            case
                when previous_sent_at is null
                    or sent_at > previous_sent_at + interval '{{ setting_number('chat_gap_hours') }} hours'
                    then 1
                else 0
            end
        ) over (
            partition by chat_id order by sent_at, seq, message_key
            rows between unbounded preceding and current row
        ) as chat_number
    from ordered
),

dated as (
    select *, min(sent_at) over (partition by chat_id, chat_number) as chat_started_at
    from numbered
)

select
    chat_id || ':' || {{ epoch_ms_text('chat_started_at') }} as chat_key,
    chat_id,
    client_id,
    chat_started_at,
    message_key,
    message_id,
    sender_type,
    text,
    agent_id,
    agent_name,
    seq,
    sent_at,
    sent_at_source
from dated
