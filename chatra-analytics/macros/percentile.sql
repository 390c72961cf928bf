{#- The continuous percentile `fraction` of `expression` in a GROUP BY (interpolated, as
    PostgreSQL's percentile_cont: the median of 1, 2, 3, 10 is 2.5). -#}
{% macro percentile(expression, fraction) %}
  {{ return(adapter.dispatch('percentile', 'chatra_analytics')(expression, fraction)) }}
{% endmacro %}
{% macro default__percentile(expression, fraction) %}
  percentile_cont({{ fraction }}) within group (order by {{ expression }})
{% endmacro %}
{% macro duckdb__percentile(expression, fraction) %}
  quantile_cont({{ expression }}, {{ fraction }})
{% endmacro %}
