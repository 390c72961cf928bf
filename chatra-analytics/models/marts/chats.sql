-- One row per chat: who, when, how many messages from each side, and how fast it was answered.
-- The first response is the first agent message not before the client's first message.
with messages as (
    select * from {{ ref('int_chat_messages') }}
),

client_side as (
    select
        chat_key,
        min(sent_at) as first_client_message_at,
        max(sent_at) as last_client_message_at
    from messages
    where sender_type = 'client'
    group by chat_key
),

responses as (
    select
        message.chat_key,
        message.sent_at,
        message.agent_id,
        message.agent_name,
        row_number() over (
            partition by message.chat_key
            order by message.sent_at, message.seq, message.message_key
        ) as response_number
    from messages as message
    inner join client_side on client_side.chat_key = message.chat_key
    where message.sender_type = 'agent'
        and message.sent_at >= client_side.first_client_message_at
),

last_client_text as (
    select
        chat_key,
        text,
        row_number() over (
            partition by chat_key order by sent_at desc, seq desc, message_key desc
        ) as from_last
    from messages
    where sender_type = 'client'
),

follow_ups as (
    select chat.chat_key, min(follow_up.sent_at) as followed_up_at
    from (select distinct chat_key, client_id, chat_started_at from messages) as chat
    inner join {{ ref('int_follow_ups') }} as follow_up
        on follow_up.client_id = chat.client_id
        and follow_up.sent_at >= chat.chat_started_at
    group by chat.chat_key
),

totals as (
    select
        chat_key,
        min(chat_id) as chat_id,
        min(client_id) as client_id,
        min(sent_at) as started_at,
        max(sent_at) as ended_at,
        count(*) as messages,
        cast(sum(case when sender_type = 'client' then 1 else 0 end) as integer) as client_messages,
        cast(sum(case when sender_type = 'agent' then 1 else 0 end) as integer) as agent_messages,
        count(distinct case when sender_type = 'agent' then coalesce(agent_id, 'unknown') end)
            as agents,
        string_agg(distinct agent_id, ',' order by agent_id) as agent_ids,
        max(case when sent_at_source = 'received_at' then 1 else 0 end) = 1 as times_from_receipt
    from messages
    group by chat_key
)

select
    totals.chat_key,
    totals.chat_id,
    totals.client_id,
    totals.started_at,
    totals.ended_at,
    cast(totals.started_at as date) as started_on,
    {{ seconds_between('totals.started_at', 'totals.ended_at') }} as duration_seconds,
    totals.messages,
    totals.client_messages,
    totals.agent_messages,
    totals.agents,
    totals.agent_ids,
    client_side.first_client_message_at,
    client_side.last_client_message_at,
    last_client_text.text as last_client_text,
    response.sent_at as first_response_at,
    {{ seconds_between('client_side.first_client_message_at', 'response.sent_at') }}
        as first_response_seconds,
    response.agent_id as first_response_agent_id,
    response.agent_name as first_response_agent_name,
    case
        when client_side.chat_key is null then 'agent_only'
        when response.chat_key is null then 'unanswered'
        else 'answered'
    end as status,
    response.chat_key is not null as is_answered,
    follow_ups.followed_up_at,
    totals.times_from_receipt
from totals
left join client_side on client_side.chat_key = totals.chat_key
left join responses as response
    on response.chat_key = totals.chat_key and response.response_number = 1
left join last_client_text
    on last_client_text.chat_key = totals.chat_key and last_client_text.from_last = 1
left join follow_ups on follow_ups.chat_key = totals.chat_key
