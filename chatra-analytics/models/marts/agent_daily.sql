-- One row per agent and UTC day: the chats they wrote in, their messages, and how fast the
-- chats they answered first were answered. Agent messages without an agent ID count under
-- agent_id 'unknown'.
with agent_messages as (
    select
        coalesce(agent_id, 'unknown') as agent_id,
        agent_name,
        cast(sent_at as date) as activity_date,
        chat_key
    from {{ ref('int_chat_messages') }}
    where sender_type = 'agent'
),

activity as (
    select
        agent_id,
        activity_date,
        max(agent_name) as agent_name,
        count(distinct chat_key) as chats,
        count(*) as messages
    from agent_messages
    group by agent_id, activity_date
),

first_responses as (
    select
        coalesce(first_response_agent_id, 'unknown') as agent_id,
        cast(first_response_at as date) as activity_date,
        count(*) as first_responses,
        {{ percentile('first_response_seconds', 0.5) }} as median_first_response_seconds,
        {{ percentile('first_response_seconds', 0.9) }} as p90_first_response_seconds
    from {{ ref('chats') }}
    where first_response_at is not null
    group by coalesce(first_response_agent_id, 'unknown'), cast(first_response_at as date)
)

select
    activity.agent_id || ':' || cast(activity.activity_date as varchar) as agent_day_key,
    activity.agent_id,
    activity.agent_name,
    activity.activity_date,
    activity.chats,
    activity.messages,
    coalesce(first_responses.first_responses, 0) as first_responses,
    cast(first_responses.median_first_response_seconds as double precision)
        as median_first_response_seconds,
    cast(first_responses.p90_first_response_seconds as double precision)
        as p90_first_response_seconds
from activity
left join first_responses
    on first_responses.agent_id = activity.agent_id
    and first_responses.activity_date = activity.activity_date
