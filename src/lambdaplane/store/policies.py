"""Resource-based policy rows: a function's statements per qualifier.

A policy belongs to the unqualified function (qualifier ``$LATEST``), a version or an
alias. Writing one also gives its owner (the ``$LATEST`` or version row, or the alias
row) the policy's new RevisionId, in the same transaction, compare-and-swap on both:
on AWS a permission change is a change of the function, version or alias.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from lambdaplane.store.functions import LATEST
from lambdaplane.store.schema import (
    function_aliases,
    function_policies,
    function_versions,
    functions,
)

UNQUALIFIED = LATEST  # the qualifier the unqualified function's policy is stored under


class _Lost(Exception):
    """A compare-and-swap inside the write's transaction found a row changed."""


@dataclass(frozen=True)
class StoredPolicy:
    function_name: str
    qualifier: str  # UNQUALIFIED, a version number or an alias name
    statements: list[dict[str, Any]]  # in the order they were added
    revision_id: str


@dataclass(frozen=True)
class PolicyWrite:
    """Replace the policy of (function, qualifier) with ``statements`` (none: delete it).

    ``expected`` is the policy's revision as read (None: there was none);
    ``owner_revision`` the owner's RevisionId as read. Both must still hold.
    """

    function_name: str
    qualifier: str
    statements: list[dict[str, Any]]
    revision_id: str
    expected: str | None
    owner_revision: str
    owner_is_alias: bool


class PolicyRepository:
    """Policies of the functions of one account and region."""

    def __init__(self, engine: sa.Engine, account_id: str, region: str) -> None:
        self._engine = engine
        self._scope = sa.and_(functions.c.account_id == account_id, functions.c.region == region)

    def get(self, function_name: str, qualifier: str) -> StoredPolicy | None:
        query = (
            sa.select(function_policies.c.statements, function_policies.c.revision_id)
            .select_from(functions.join(function_policies))
            .where(
                self._scope,
                functions.c.name == function_name,
                function_policies.c.qualifier == qualifier,
            )
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return StoredPolicy(function_name, qualifier, list(row[0]), row[1])

    def write(self, change: PolicyWrite) -> bool:
        """Apply ``change`` and set its owner's RevisionId; False if either changed meanwhile."""
        try:
            with self._engine.begin() as conn:
                function_id = conn.execute(
                    sa.select(functions.c.id).where(
                        self._scope, functions.c.name == change.function_name
                    )
                ).scalar()
                if function_id is None:
                    raise _Lost
                _write_policy(conn, function_id, change)
                if change.owner_is_alias:
                    _bump_alias(conn, function_id, change)
                else:
                    _bump_version(conn, function_id, change)
        except (_Lost, IntegrityError):
            return False
        return True


def _write_policy(conn: sa.Connection, function_id: int, change: PolicyWrite) -> None:
    if change.expected is None:
        if change.statements:
            conn.execute(
                function_policies.insert().values(
                    function_id=function_id,
                    qualifier=change.qualifier,
                    statements=change.statements,
                    revision_id=change.revision_id,
                )
            )  # a concurrent insert of the same policy raises IntegrityError
        return
    this = sa.and_(
        function_policies.c.function_id == function_id,
        function_policies.c.qualifier == change.qualifier,
        function_policies.c.revision_id == change.expected,
    )
    if change.statements:
        statement: Any = (
            function_policies.update()
            .where(this)
            .values(statements=change.statements, revision_id=change.revision_id)
        )
    else:
        statement = function_policies.delete().where(this)
    if conn.execute(statement).rowcount != 1:
        raise _Lost


def _bump_alias(conn: sa.Connection, function_id: int, change: PolicyWrite) -> None:
    result = conn.execute(
        function_aliases.update()
        .where(
            function_aliases.c.function_id == function_id,
            function_aliases.c.name == change.qualifier,
            function_aliases.c.revision_id == change.owner_revision,
        )
        .values(revision_id=change.revision_id)
    )
    if result.rowcount != 1:
        raise _Lost


def _bump_version(conn: sa.Connection, function_id: int, change: PolicyWrite) -> None:
    this = sa.and_(
        function_versions.c.function_id == function_id,
        function_versions.c.version == change.qualifier,
        function_versions.c.revision_id == change.owner_revision,
    )
    config = conn.execute(sa.select(function_versions.c.config).where(this)).scalar()
    if config is None:
        raise _Lost
    result = conn.execute(
        function_versions.update()
        .where(this)
        .values(revision_id=change.revision_id, config={**config, "RevisionId": change.revision_id})
    )
    if result.rowcount != 1:
        raise _Lost
