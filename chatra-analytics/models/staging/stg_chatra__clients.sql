-- One row per client (visitor), the last emitted copy when a target kept several.
with clients as (
    select
        id as client_id,
        "chatId" as chat_id,
        "displayedName" as displayed_name,
        name,
        email,
        phone,
        language,
        {{ timestamp_from_epoch_ms('"lastVisitAt"') }} as last_visit_at,
        coalesce(cast(created_at as timestamp), {{ timestamp_from_epoch_ms('"createdAt"') }}) as created_at
    from {{ chatra_source('clients', {
        'id': 'varchar', 'chatId': 'varchar', 'displayedName': 'varchar', 'name': 'varchar',
        'email': 'varchar', 'phone': 'varchar', 'language': 'varchar', 'lastVisitAt': 'bigint',
        'created_at': 'timestamp', 'createdAt': 'bigint'}) }} as source_rows
    where id is not null
),

ranked as (
    select *, row_number() over (partition by client_id order by last_visit_at desc) as copy_number
    from clients
)

select client_id, chat_id, displayed_name, name, email, phone, language, last_visit_at, created_at
from ranked
where copy_number = 1
