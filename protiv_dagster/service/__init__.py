"""The integrations service's HTTP layer (FastAPI): ``app.create_app`` over
``protiv_dagster.integrations.service``; ``protiv serve`` runs it."""
