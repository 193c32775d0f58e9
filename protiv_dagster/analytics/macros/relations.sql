{#- References without the database (catalog) name. A DuckDB view stores the names it reads, and the
    analysts' copy of the warehouse file is attached under another catalog name
    (warehouse.analysts.duckdb): a view naming "warehouse".protiv.x would fail there. -#}
{% macro ref() -%}
    {{ return(builtins.ref(*varargs, **kwargs).include(database=false)) }}
{%- endmacro %}

{% macro source() -%}
    {{ return(builtins.source(*varargs, **kwargs).include(database=false)) }}
{%- endmacro %}
