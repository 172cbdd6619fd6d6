"""The migrations build exactly the schema the models describe (a model change without its migration fails)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import core.models  # noqa: F401 - registers every table on the metadata
from core.infra.db import Base, get_engine


def test_the_migrated_database_matches_the_models(infra):
    with get_engine().connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []
