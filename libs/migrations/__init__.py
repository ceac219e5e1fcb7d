"""Plain versioned SQL migrations (``sql/NNNN_name.sql``) and the runner that applies them."""

from libs.migrations.runner import (
    MigrationState,
    MigrationStatus,
    apply_migrations,
    migration_status,
)
from libs.migrations.source import Migration, bundled_migrations, load_migrations

__all__ = [
    "Migration",
    "MigrationState",
    "MigrationStatus",
    "apply_migrations",
    "bundled_migrations",
    "load_migrations",
    "migration_status",
]
