{#- A presentation column: `column` rounded as people read it, named `<column>_display`
    (docs/analysts.md). Kinds: hours and dollars to 2 decimals, percent to 1 decimal, ratio
    (1.153) as a percent to 1 decimal (115.3). The exact column stays beside it. -#}
{% macro display(column, kind) -%}
    {%- if kind in ('hours', 'dollars') -%}
        CAST({{ column }} AS NUMERIC(14,2))
    {%- elif kind == 'percent' -%}
        CAST({{ column }} AS NUMERIC(14,1))
    {%- elif kind == 'ratio' -%}
        CAST({{ column }} * 100 AS NUMERIC(14,1))
    {%- else -%}
        {{ exceptions.raise_compiler_error("display(): unknown kind " ~ kind) }}
    {%- endif %} AS {{ column }}_display
{%- endmacro %}
