-- Impossible figures per agent and day: a 90th percentile below the median, a negative
-- response time, more first responses than chats, fewer messages than chats, and first
-- responses that do not add up to the answered chats.
select agent_day_key as problem_key, 'percentiles out of order or negative' as problem
from {{ ref('agent_daily') }}
where p90_first_response_seconds < median_first_response_seconds
    or median_first_response_seconds < 0

union all

select agent_day_key, 'counts out of order' as problem
from {{ ref('agent_daily') }}
where first_responses > chats or messages < chats or chats < 1

union all

select 'all agents', 'first responses do not add up to answered chats' as problem
from (select sum(first_responses) as total from {{ ref('agent_daily') }}) as responses
cross join (select count(*) as total from {{ ref('chats') }} where is_answered) as answered
where coalesce(responses.total, 0) <> answered.total
