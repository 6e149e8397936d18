"""Persistence: SQLAlchemy engine, tables and the queries the service makes."""

from app.store.db import create_store_engine, database_url, init_db, session_factory

__all__ = ["create_store_engine", "database_url", "init_db", "session_factory"]
