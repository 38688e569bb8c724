"""The store: SQLAlchemy 2 Core over SQLite (WAL) by default, PostgreSQL-ready.

The domain sees repositories, never SQL. Only portable SQL is used (no SQLite-only
statements outside the connection set-up in ``engine.py``), so the same schema and
queries run on PostgreSQL when several nodes share one database.
"""

from lambdaplane.store.aliases import AliasRepository, StoredAlias
from lambdaplane.store.engine import open_engine
from lambdaplane.store.functions import FunctionRepository, StoredFunction
from lambdaplane.store.migrate import upgrade
from lambdaplane.store.tags import TagRepository

__all__ = [
    "AliasRepository",
    "FunctionRepository",
    "StoredAlias",
    "StoredFunction",
    "TagRepository",
    "open_engine",
    "upgrade",
]
