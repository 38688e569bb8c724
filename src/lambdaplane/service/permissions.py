"""Resource-based policies of functions: AddPermission, RemovePermission, GetPolicy, and
``allows``, which the API (foreign keys) and function URLs ask before invoking.

A policy belongs to exactly one qualifier: the unqualified function (which also covers
``$LATEST``), a published version, or an alias; publishing a version copies nothing.
Its RevisionId is shared with its owner: adding or removing a statement gives the
function's ``$LATEST`` (or the version, or the alias) that new RevisionId, so a client
may pass either GetPolicy's or GetFunction/GetAlias's RevisionId. A ``RevisionId`` in a
request must equal the policy's, or the owner's while it has no policy yet.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lambdaplane.auth.keys import Identity
from lambdaplane.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lambdaplane.policy import document, evaluate
from lambdaplane.service.names import MAX_NAME_LENGTH, FunctionRef, Scope
from lambdaplane.store import AliasRepository, FunctionRepository
from lambdaplane.store.functions import LATEST
from lambdaplane.store.policies import UNQUALIFIED, PolicyRepository, PolicyWrite, StoredPolicy

NO_LATEST = "We currently do not support adding policies for $LATEST."
NOT_FOUND = "The resource you requested does not exist."
NO_POLICY = "No policy is associated with the given resource."
# AddPermission's answer to a stale RevisionId (recorded 2025 for functions and aliases);
# RemovePermission's still names GetFunction/GetAlias (recorded 2022).
ADD_REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetPolicy API to retrieve the latest Revision Id"
)
REMOVE_REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)
POLICY_CACHE_SECONDS = 1.0  # allows() reads a policy from memory for this long
_ALIAS = re.compile(r"(?!\d+$)[a-zA-Z0-9-_]+")
_ATTEMPTS = 5  # compare-and-swap rounds before a write gives up
_CACHE_ENTRIES = 4096


@dataclass(frozen=True)
class _Owner:
    """What a policy belongs to, as read: its qualifier key, ARN and RevisionId."""

    name: str
    key: str  # UNQUALIFIED, a version number or an alias name
    arn: str
    revision_id: str
    is_alias: bool


class PermissionService:
    def __init__(
        self,
        scope: Scope,
        functions: FunctionRepository,
        aliases: AliasRepository,
        policies: PolicyRepository,
        *,
        alias_changed: Callable[[str], None] = lambda _name: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.scope = scope
        self._functions = functions
        self._aliases = aliases
        self._policies = policies
        self._alias_changed = alias_changed
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[float, list[dict[str, Any]]]] = {}

    # -- the API -----------------------------------------------------------------------

    def add_permission(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """AddPermission: append a statement to the policy of the qualifier named."""
        ref = self.scope.parse(request["FunctionName"], request.get("Qualifier"))
        if ref.qualifier == LATEST:
            raise InvalidParameterValueException(NO_LATEST)
        sid = request["StatementId"]
        for _ in range(_ATTEMPTS):
            owner = self._owner(ref)
            policy = self._policies.get(owner.name, owner.key)
            _check_revision(request.get("RevisionId"), owner, policy, ADD_REVISION_MISMATCH)
            statements = [] if policy is None else policy.statements
            if any(s.get("Sid") == sid for s in statements):
                raise ResourceConflictException(
                    f"The statement id ({sid}) provided already exists. Please provide a new "
                    "statement id, or remove the existing statement."
                )
            statement = document.build_statement(request, owner.arn, self.scope.partition)
            if self._write(owner, policy, [*statements, statement]):
                return {"Statement": document.render_statement(statement)}
        raise self._busy(ref)

    def remove_permission(
        self,
        function_name: str,
        statement_id: str,
        qualifier: str | None,
        revision_id: str | None,
    ) -> None:
        """RemovePermission: drop one statement; the last one takes the policy with it."""
        ref = self.scope.parse(function_name, qualifier)
        if len(ref.name) > MAX_NAME_LENGTH or self._functions.get(ref.name) is None:
            raise ResourceNotFoundException(
                f"No policy found for: {self.scope.function_arn(ref.name, ref.qualifier)}"
            )
        for _ in range(_ATTEMPTS):
            owner = self._owner(ref)
            policy = self._policies.get(owner.name, owner.key)
            if policy is None:
                raise ResourceNotFoundException(NO_POLICY)
            _check_revision(revision_id, owner, policy, REMOVE_REVISION_MISMATCH)
            kept = [s for s in policy.statements if s.get("Sid") != statement_id]
            if len(kept) == len(policy.statements):
                raise ResourceNotFoundException(
                    f"Statement {statement_id} is not found in resource policy."
                )
            if self._write(owner, policy, kept):
                return
        raise self._busy(ref)

    def get_policy(self, function_name: str, qualifier: str | None) -> dict[str, Any]:
        """GetPolicy: the qualifier's policy document and RevisionId."""
        ref = self.scope.parse(function_name, qualifier)
        policy = None
        if len(ref.name) <= MAX_NAME_LENGTH:
            policy = self._policies.get(ref.name, _key(ref.qualifier))
        if policy is None or not policy.statements:
            raise ResourceNotFoundException(NOT_FOUND)
        return {
            "Policy": document.render_policy(policy.statements),
            "RevisionId": policy.revision_id,
        }

    # -- evaluation --------------------------------------------------------------------

    def allows(
        self,
        function_name: str,
        qualifier: str | None,
        *,
        action: str,
        caller: Identity | None,
        url_auth_type: str | None = None,
        source_arn: str | None = None,
        source_account: str | None = None,
    ) -> bool:
        """Whether the policy of exactly that qualifier (None: the unqualified function)
        allows ``action`` for ``caller`` (None: anonymous). Reads a copy at most
        POLICY_CACHE_SECONDS old; the account's own callers are not for this to judge."""
        ref = self.scope.parse(function_name, qualifier)
        request = evaluate.Request(
            action=action,
            caller=caller,
            url_auth_type=url_auth_type,
            source_arn=source_arn,
            source_account=source_account,
        )
        return evaluate.allows(self._statements(ref.name, _key(ref.qualifier)), request)

    def _statements(self, name: str, key: str) -> list[dict[str, Any]]:
        now = self._clock()
        hit = self._cache.get((name, key))
        if hit is not None and now - hit[0] < POLICY_CACHE_SECONDS:
            return hit[1]
        policy = self._policies.get(name, key) if len(name) <= MAX_NAME_LENGTH else None
        statements = [] if policy is None else policy.statements
        if len(self._cache) >= _CACHE_ENTRIES:  # callers choose the keys: keep it bounded
            self._cache.clear()
        self._cache[(name, key)] = (now, statements)
        return statements

    # -- helpers -----------------------------------------------------------------------

    def _owner(self, ref: FunctionRef) -> _Owner:
        """The function, version or alias ``ref`` names, or AWS's not-found error."""
        name, qualifier = ref.name, ref.qualifier
        latest = self._functions.get(name) if len(name) <= MAX_NAME_LENGTH else None
        if latest is None:
            raise self.scope.not_found(name)
        if qualifier is None or qualifier == LATEST:
            arn = self.scope.function_arn(name)
            return _Owner(name, UNQUALIFIED, arn, latest.revision_id, is_alias=False)
        arn = self.scope.function_arn(name, qualifier)
        if qualifier.isdigit():
            version = self._functions.get(name, qualifier)
            if version is None:
                raise self.scope.not_found(name, qualifier)
            return _Owner(name, qualifier, arn, version.revision_id, is_alias=False)
        alias = self._aliases.get(name, qualifier) if _ALIAS.fullmatch(qualifier) else None
        if alias is None:
            if _ALIAS.fullmatch(qualifier):
                raise ResourceNotFoundException(f"Cannot find alias arn: {arn}")
            raise self.scope.not_found(name, qualifier)
        return _Owner(name, qualifier, arn, alias.revision_id, is_alias=True)

    def _write(
        self, owner: _Owner, policy: StoredPolicy | None, statements: list[dict[str, Any]]
    ) -> bool:
        written = self._policies.write(
            PolicyWrite(
                function_name=owner.name,
                qualifier=owner.key,
                statements=statements,
                revision_id=str(uuid.uuid4()),
                expected=None if policy is None else policy.revision_id,
                owner_revision=owner.revision_id,
                owner_is_alias=owner.is_alias,
            )
        )
        self._cache.pop((owner.name, owner.key), None)
        if written and owner.is_alias:
            self._alias_changed(owner.name)
        return written

    def _busy(self, ref: FunctionRef) -> ResourceConflictException:
        return ResourceConflictException(
            "The operation cannot be performed at this time. An update is in progress for "
            f"resource: {self.scope.function_arn(ref.name, ref.qualifier)}"
        )


def _key(qualifier: str | None) -> str:
    return UNQUALIFIED if qualifier is None else qualifier


def _check_revision(
    given: str | None, owner: _Owner, policy: StoredPolicy | None, message: str
) -> None:
    expected = owner.revision_id if policy is None else policy.revision_id
    if given is not None and given != expected:
        raise PreconditionFailedException(message)
