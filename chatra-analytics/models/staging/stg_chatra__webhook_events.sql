-- One row per webhook event (`seq`), the newest copy when a target kept several.
with events as (
    select
        cast(seq as bigint) as seq,
        cast(received_at as timestamp) as received_at,
        event_name,
        client_id,
        chat_id,
        row_number() over (partition by seq order by received_at desc) as copy_number
    from {{ chatra_source('webhook_events', {
        'seq': 'bigint', 'received_at': 'timestamp', 'event_name': 'varchar',
        'client_id': 'varchar', 'chat_id': 'varchar'}) }} as source_rows
    where seq is not null
)

select seq, received_at, event_name, client_id, chat_id
from events
where copy_number = 1
