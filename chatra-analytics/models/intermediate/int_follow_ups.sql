-- Follow-ups already sent: messages whose receivedFrom is the follow-up job's tag, whether
-- read back by ID (target-chatra-push's sent-ID file into tap-chatra) or seen in a webhook.
select client_id, created_at as sent_at, 'pushed_messages' as found_in
from {{ ref('stg_chatra__pushed_messages') }}
where received_from = {{ setting_literal('follow_up_received_from') }}

union all

select client_id, created_at as sent_at, 'messages' as found_in
from {{ ref('stg_chatra__messages') }}
where received_from = {{ setting_literal('follow_up_received_from') }}

union all

select client_id, sent_at, 'chat_messages' as found_in
from {{ ref('stg_chatra__chat_messages') }}
where received_from = {{ setting_literal('follow_up_received_from') }}
