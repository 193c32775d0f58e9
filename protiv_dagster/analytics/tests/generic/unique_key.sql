{#- The columns together identify a row (a composite primary key). -#}
{% test unique_key(model, columns) %}
SELECT {{ columns | join(', ') }}, COUNT(*) AS rows_with_key
FROM {{ model }}
GROUP BY {{ columns | join(', ') }}
HAVING COUNT(*) > 1
{% endtest %}
