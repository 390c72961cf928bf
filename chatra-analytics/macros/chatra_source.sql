{#-
  One of tap-chatra's tables, or an empty stand-in with the same columns when it is missing.

  A table exists only once its stream has run with a webhook source or an ID list (a tap
  without a webhook source never makes chat_messages), so the models build on whatever was
  loaded; a missing table is logged. `columns` maps each column the models read to its type.
  Callers alias it (`... }} as rows`): PostgreSQL before 16 wants an alias on a subquery.
-#}
{% macro chatra_source(table, columns) %}
  {%- set relation = source('chatra', table) -%}
  {%- if execute and adapter.get_relation(relation.database, relation.schema, relation.identifier) is none -%}
    {{ log("chatra_analytics: no table " ~ relation ~ " yet; reading it as empty", info=True) }}
    (select
      {%- for name, type in columns.items() %}
      cast(null as {{ type }}) as {{ adapter.quote(name) }}{{ "," if not loop.last }}
      {%- endfor %}
    where 1 = 0)
  {%- else -%}
    {{ relation }}
  {%- endif -%}
{% endmacro %}
