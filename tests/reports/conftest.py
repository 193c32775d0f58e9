from tests.assets.conftest import (  # noqa: F401 (fixtures)
    instance_kind,
    pipeline,
    provider,
    warehouse_backend,
)
