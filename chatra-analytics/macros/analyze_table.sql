{#- A post-hook of the table models: fresh planner statistics on PostgreSQL, which has none
    for a table just created, and may then pick a plan that reads a view once per row
    (missed_chats over 1,000,000 messages took minutes). DuckDB needs none. -#}
{% macro analyze_table() %}
  {{ return(adapter.dispatch('analyze_table', 'chatra_analytics')()) }}
{% endmacro %}
{% macro default__analyze_table() %}
  analyze {{ this }}
{% endmacro %}
{% macro duckdb__analyze_table() %}
{% endmacro %}
