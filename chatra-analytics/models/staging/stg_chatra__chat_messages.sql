-- A table, not a view like the other staging models: it is read by two models, and its
-- de-duplication over every message is what costs (bench/dbt_bench.py).
{{ config(materialized='table') }}

-- One row per chat message (the tap's `key`), from the webhooks.
-- A message is seen in a chatFragment and again in the chatTranscript: the row read from the
-- latest event (highest `seq`) wins, and its time of receipt is the earliest one seen.
-- `sent_at` is the message's `createdAt`; webhooks may not carry it (unknown), and then it is
-- when the inbox received the first event that carried the message.
with messages as (
    select
        message.key as message_key,
        message.id as message_id,
        coalesce(message.chat_id, message.client_id) as chat_id,
        message.client_id,
        lower(message.type) as sender_type,
        message.text,
        cast(message.created_at as timestamp) as created_at,
        message.agent_id,
        message.agent_name,
        coalesce(message.is_pushed, false) as is_pushed,
        message.received_from,
        cast(message.seq as bigint) as seq,
        event.received_at
    from {{ chatra_source('chat_messages', {
        'key': 'varchar', 'id': 'varchar', 'chat_id': 'varchar', 'client_id': 'varchar',
        'type': 'varchar', 'text': 'varchar', 'created_at': 'timestamp', 'agent_id': 'varchar',
        'agent_name': 'varchar', 'is_pushed': 'boolean', 'received_from': 'varchar',
        'seq': 'bigint'}) }} as message
    left join {{ ref('stg_chatra__webhook_events') }} as event
        on event.seq = message.seq
    where message.key is not null
),

ranked as (
    select
        *,
        row_number() over (partition by message_key order by seq desc) as copy_number,
        min(received_at) over (partition by message_key) as first_received_at
    from messages
)

select
    message_key,
    message_id,
    chat_id,
    client_id,
    sender_type,
    text,
    agent_id,
    agent_name,
    is_pushed,
    received_from,
    seq,
    created_at,
    first_received_at as received_at,
    coalesce(created_at, first_received_at) as sent_at,
    case when created_at is not null then 'created_at' else 'received_at' end as sent_at_source
from ranked
where copy_number = 1
