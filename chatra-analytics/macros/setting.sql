{#- A setting of the models: `--vars`, else the variable CHATRA_ANALYTICS_<NAME> (Meltano sets
    them from the dbt plugins' settings), else its default below. source_schema, the one other
    setting, is read in models/sources.yml. -#}
{% macro setting(name) %}
  {%- set defaults = {
      'missed_chat_minutes': '30',
      'follow_up_received_from': 'chatra-follow-up',
      'chat_gap_hours': '6',
      'as_of': '',
      'missed_chats_export': '',
  } -%}
  {%- if name not in defaults -%}
    {{ exceptions.raise_compiler_error("chatra_analytics: no setting named " ~ name) }}
  {%- endif -%}
  {%- set value = var(name, none) -%}
  {%- if value is none -%}
    {%- set value = env_var('CHATRA_ANALYTICS_' ~ (name | upper), defaults[name]) -%}
  {%- endif -%}
  {{- return(value | string) -}}
{% endmacro %}

{#- A text setting as a SQL string literal. -#}
{% macro setting_literal(name) %}
  {{- return("'" ~ (setting(name) | replace("'", "''")) ~ "'") -}}
{% endmacro %}

{#- A number setting, checked: a clear error instead of broken SQL. -#}
{% macro setting_number(name) %}
  {%- set value = setting(name) | trim -%}
  {%- if not modules.re.fullmatch('[0-9]+([.][0-9]+)?', value) -%}
    {{ exceptions.raise_compiler_error(
        "chatra_analytics: " ~ name ~ " must be a non-negative number, got '" ~ value
        ~ "'; set CHATRA_ANALYTICS_" ~ (name | upper) ~ " or --vars to a number") }}
  {%- endif -%}
  {{- return(value) -}}
{% endmacro %}
