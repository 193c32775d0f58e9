{#- A model's schema is exactly its custom schema (`analytics`), not dbt's `<target schema>_analytics`:
    analysts look for the marts under one name on every deployment. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
