{#- Every non-null `column_name` exists in `to`'s `field` within the row's own company: ids are unique
    only within a company (company_id is part of every key), so a reference checked on the id alone
    would pass when the id exists in another company only. Returns the rows that refer to nothing. -#}
{% test relationships_within_company(model, column_name, to, field, company_column='company_id') %}
SELECT child.{{ company_column }}, child.{{ column_name }}
FROM {{ model }} AS child
LEFT JOIN {{ to }} AS parent
    ON parent.{{ company_column }} = child.{{ company_column }} AND parent.{{ field }} = child.{{ column_name }}
WHERE child.{{ column_name }} IS NOT NULL AND parent.{{ field }} IS NULL
{% endtest %}
