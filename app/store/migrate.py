"""Columns added since a database was created: `ALTER TABLE ... ADD COLUMN`, idempotent.

`create_all` makes missing tables but never changes existing ones, so a database made by an
older version lacks columns added later (e.g. `jobs.kind`, `jobs.result`). Every such column
is nullable or has a server default, so adding it to a table with rows is safe.
"""

from __future__ import annotations

from sqlalchemy import Connection, inspect, text
from sqlalchemy.schema import CreateColumn

from app.store.tables import Base


def add_missing_columns(connection: Connection) -> list[str]:
    """Add every mapped column an existing table lacks (in the connection's transaction); returns them as `table.column`."""
    inspector = inspect(connection)
    preparer = connection.dialect.identifier_preparer
    added = []
    for table in Base.metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                ddl = CreateColumn(column).compile(dialect=connection.dialect)
                connection.execute(text(f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {ddl}"))
                added.append(f"{table.name}.{column.name}")
    return added
