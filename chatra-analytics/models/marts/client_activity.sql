-- One row per client who chatted: how often, when last, when last answered, and how many of
-- their chats are still unanswered with no follow-up sent.
with chats as (
    select * from {{ ref('chats') }}
),

per_client as (
    select
        client_id,
        count(*) as chats,
        min(started_at) as first_chat_at,
        max(started_at) as last_chat_at,
        max(case when is_answered then started_at end) as last_answered_chat_at,
        cast(sum(case when status = 'unanswered' then 1 else 0 end) as integer) as unanswered_chats,
        cast(sum(case when status = 'unanswered' and followed_up_at is null then 1 else 0 end) as integer)
            as open_unanswered_chats
    from chats
    where client_id is not null
    group by client_id
)

select
    per_client.client_id,
    client.displayed_name,
    client.email,
    per_client.chats,
    per_client.first_chat_at,
    per_client.last_chat_at,
    per_client.last_answered_chat_at,
    per_client.unanswered_chats,
    per_client.open_unanswered_chats,
    client.last_visit_at
from per_client
left join {{ ref('stg_chatra__clients') }} as client on client.client_id = per_client.client_id
