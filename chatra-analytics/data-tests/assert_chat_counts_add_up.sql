-- Impossible figures: message counts that do not add up, an answered chat without an agent
-- message or first response, a chat with more agents than agent messages.
select chat_key, 'messages do not add up' as problem
from {{ ref('chats') }}
where messages <> client_messages + agent_messages or messages < 1

union all

select chat_key, 'answered without a response' as problem
from {{ ref('chats') }}
where is_answered and (agent_messages = 0 or first_response_at is null)

union all

select chat_key, 'unanswered with a response' as problem
from {{ ref('chats') }}
where not is_answered and first_response_at is not null

union all

select chat_key, 'more agents than agent messages' as problem
from {{ ref('chats') }}
where agents > agent_messages
