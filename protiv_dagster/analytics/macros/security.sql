{#- On PostgreSQL a view reads its tables as its owner unless it is `security_invoker`: the marts
    would show every company to an analyst. Set on every model (a post-hook, dbt_project.yml). -#}
{% macro security_invoker() -%}
    {%- if target.type == 'postgres' and model.config.materialized == 'view' -%}
        ALTER VIEW {{ this }} SET (security_invoker = true)
    {%- endif -%}
{%- endmacro %}
