{#- DuckDB only: write a model's rows to a JSONL file, one object a line, replacing it; a
    post-hook. No tap reads DuckDB, so the follow-up job reads this file with tap-jsonl. -#}
{% macro export_jsonl(path) %}
  {%- if path and target.type == 'duckdb' -%}
    copy (select * from {{ this }} order by 1) to '{{ path | replace("'", "''") }}' (format json)
  {%- else -%}
    select 1
  {%- endif -%}
{% endmacro %}
