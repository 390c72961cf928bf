{#- A staging select over one of the REST message tables (`messages`, `pushed_messages`):
    snake_case, one row per `id`, `created_at` from the tap or from Chatra's epoch ms. -#}
{% macro chatra_messages(table) %}
with messages as (
    select
        id as message_id,
        lower(type) as sender_type,
        text,
        "clientId" as client_id,
        "agentId" as agent_id,
        "agentName" as agent_name,
        coalesce(cast(created_at as timestamp), {{ timestamp_from_epoch_ms('"createdAt"') }}) as created_at,
        coalesce("isPushed", false) as is_pushed,
        "receivedFrom" as received_from
    from {{ chatra_source(table, {
        'id': 'varchar', 'type': 'varchar', 'text': 'varchar', 'clientId': 'varchar',
        'agentId': 'varchar', 'agentName': 'varchar', 'created_at': 'timestamp',
        'createdAt': 'bigint', 'isPushed': 'boolean', 'receivedFrom': 'varchar'}) }} as source_rows
    where id is not null
),

ranked as (
    select *, row_number() over (partition by message_id order by created_at desc) as copy_number
    from messages
)

select
    message_id, sender_type, text, client_id, agent_id, agent_name, created_at, is_pushed,
    received_from
from ranked
where copy_number = 1
{% endmacro %}
