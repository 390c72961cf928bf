{#- Time arithmetic that DuckDB and PostgreSQL spell differently. Timestamps are UTC, naive. -#}

{#- Seconds from `start` to `end`, as a double. -#}
{% macro seconds_between(start, end) %}
  {{ return(adapter.dispatch('seconds_between', 'chatra_analytics')(start, end)) }}
{% endmacro %}
{% macro default__seconds_between(start, end) %}
  cast(extract(epoch from ({{ end }} - {{ start }})) as double precision)
{% endmacro %}
{% macro duckdb__seconds_between(start, end) %}
  ((epoch_us({{ end }}) - epoch_us({{ start }})) / 1000000.0)
{% endmacro %}

{#- The timestamp of an epoch-milliseconds number (how Chatra's REST API gives times). -#}
{% macro timestamp_from_epoch_ms(column) %}
  {{ return(adapter.dispatch('timestamp_from_epoch_ms', 'chatra_analytics')(column)) }}
{% endmacro %}
{% macro default__timestamp_from_epoch_ms(column) %}
  (to_timestamp({{ column }} / 1000.0) at time zone 'UTC')
{% endmacro %}
{% macro duckdb__timestamp_from_epoch_ms(column) %}
  epoch_ms(cast({{ column }} as bigint))
{% endmacro %}

{#- Epoch milliseconds of a timestamp, as text: part of a chat's key. -#}
{% macro epoch_ms_text(column) %}
  {{ return(adapter.dispatch('epoch_ms_text', 'chatra_analytics')(column)) }}
{% endmacro %}
{#- Truncated, as DuckDB's epoch_ms: the same key on both engines. -#}
{% macro default__epoch_ms_text(column) %}
  cast(cast(floor(extract(epoch from {{ column }}) * 1000) as bigint) as varchar)
{% endmacro %}
{% macro duckdb__epoch_ms_text(column) %}
  cast(epoch_ms({{ column }}) as varchar)
{% endmacro %}

{#- The time missed chats are measured to: the `as_of` var, or now, in UTC. -#}
{% macro as_of() %}
  {%- if setting('as_of') -%}
    cast({{ setting_literal('as_of') }} as timestamp)
  {%- else -%}
    {{ return(adapter.dispatch('utc_now', 'chatra_analytics')()) }}
  {%- endif -%}
{% endmacro %}
{#- Both engines: the current time as a naive UTC timestamp, whatever the session's zone. -#}
{% macro default__utc_now() %}
  cast(now() at time zone 'UTC' as timestamp)
{% endmacro %}
