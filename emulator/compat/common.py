"""Helpers shared by the compatibility modules: backends, lookups, errors,
resource-policy evaluation and the patching decorator."""

import fnmatch
import json

from moto.kms.models import kms_backends
from moto.rds import exceptions as rds_errors
from moto.rds import models as rds
from moto.rds.utils import split_arn
from moto.utilities.arns import parse_arn

import progress
from control import FAULTS


def rds_backend(account, region):
    try:
        return rds.rds_backends[account][region]
    except KeyError:
        return None


def all_rds_backends():
    for regions in list(rds.rds_backends.values()):
        yield from list(regions.values())


def rds_error(code, message):
    """An RDS error in the query protocol; the HTTP status is the one the RDS
    API model gives the code (e.g. DBClusterQuotaExceededFault is 403)."""
    return rds_errors.RDSClientError(code, message)


def wrap(owner, name):
    """Decorator: replaces owner.name, passing the original as first argument."""
    original = getattr(owner, name)

    def install(function):
        def patched(*args, **kwargs):
            return function(original, *args, **kwargs)

        patched.__name__ = name
        patched.__doc__ = function.__doc__
        setattr(owner, name, patched)
        return function

    return install


# ----------------------------------------------------------- snapshots


def shared_with(snapshot, account):
    """A manual snapshot whose `restore` attribute names the account (or all)."""
    values = snapshot.attributes.get("restore", [])
    return snapshot.snapshot_type == "manual" and (account in values or "all" in values)


def shared_snapshots(backend):
    """Cluster snapshots of other accounts in this region shared with the caller."""
    found = []
    for account, regions in list(rds.rds_backends.items()):
        if account == backend.account_id or backend.region_name not in regions:
            continue
        owner = regions[backend.region_name]
        found += [s for s in owner.cluster_snapshots.values() if shared_with(s, backend.account_id)]
    return found


def resolve_snapshot(backend, identifier, same_region):
    """The caller's snapshot by name or ARN, or another account's by ARN when
    shared with the caller. Anything else is `DBClusterSnapshotNotFoundFault`,
    as RDS answers for a snapshot the caller may not see."""
    not_found = rds_errors.DBClusterSnapshotNotFoundError(identifier)
    if not identifier.startswith("arn:"):
        if identifier not in backend.cluster_snapshots:
            raise not_found
        return backend.cluster_snapshots[identifier]
    try:
        region, account, resource_type, name = split_arn(identifier)
    except ValueError:
        raise not_found from None
    if resource_type != "cluster-snapshot" or (same_region and region != backend.region_name):
        raise not_found
    owner = rds_backend(account, region)
    snapshot = owner.cluster_snapshots.get(name) if owner else None
    if snapshot is None:
        raise not_found
    if account != backend.account_id and not shared_with(snapshot, backend.account_id):
        raise not_found
    return snapshot


def require_available(snapshot):
    if snapshot.status != "available":
        raise rds_errors.InvalidDBClusterSnapshotStateFault(
            f"DBClusterSnapshot {snapshot.db_cluster_snapshot_identifier} is in "
            f"{snapshot.status} state but expected it to be available."
        )


def final_snapshot_status(backend, snapshot_id):
    return FAULTS.snapshot_status(backend.account_id, backend.region_name, snapshot_id) or "available"


def final_cluster_status(backend, cluster_id):
    return FAULTS.cluster_status(backend.account_id, backend.region_name, cluster_id) or "available"


def final_instance_status(backend, instance_id):
    return FAULTS.instance_status(backend.account_id, backend.region_name, instance_id) or "available"


# ------------------------------------------------------ resource policies


def as_list(value):
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def principal_covers(principal, account):
    if principal == "*":
        return True
    values = as_list(principal.get("AWS")) if isinstance(principal, dict) else []
    return any(v == "*" or v == account or v.startswith(f"arn:aws:iam::{account}:") for v in values)


# Condition keys whose StringEquals value names the calling account.
ACCOUNT_CONDITION_KEYS = ("aws:sourceowner", "aws:sourceaccount", "kms:calleraccount")


def allowed_actions(policy_json, account):
    """Actions that a resource policy allows to principals of `account`.
    Of the conditions, only a StringEquals on the caller's account
    (`AWS:SourceOwner`, `aws:SourceAccount`, `kms:CallerAccount`) is
    evaluated; other conditions and Deny statements are not."""
    try:
        statements = json.loads(policy_json).get("Statement", [])
    except (TypeError, ValueError, AttributeError):
        return []
    statements = [statements] if isinstance(statements, dict) else statements
    actions = []
    for statement in statements:
        if statement.get("Effect") != "Allow" or not principal_covers(statement.get("Principal"), account):
            continue
        equals = {k.lower(): v for k, v in statement.get("Condition", {}).get("StringEquals", {}).items()}
        owners = [v for key in ACCOUNT_CONDITION_KEYS for v in as_list(equals.get(key))]
        if owners and account not in owners:
            continue
        actions += as_list(statement.get("Action"))
    return [a.lower() for a in actions]


def policy_allows(policy_json, account, needed):
    actions = allowed_actions(policy_json, account)
    return all(any(fnmatch.fnmatch(n.lower(), a) for a in actions) for n in needed)


def find_key(key_ref, account, region):
    """The KMS key a key id, ARN, alias or alias ARN names (None if none)."""
    if key_ref.startswith("arn:"):
        arn = parse_arn(key_ref)
        account, region = arn.account, arn.region
    try:
        return kms_backends[account][region].describe_key(key_ref)
    except Exception:
        return None


def check_key_usable(key_ref, key_account, key_region, caller):
    """RDS must be able to use the key on the caller's behalf: the key exists,
    is enabled, and (another account's key) its policy lets the caller's
    account decrypt and create grants; else KMSKeyNotAccessibleFault."""
    error = rds_errors.KMSKeyNotAccessibleFault(key_ref)
    key = find_key(key_ref or "", key_account, key_region)
    if key is None or key.key_state != "Enabled":
        raise error
    if key.account_id != caller and not policy_allows(key.policy, caller, ["kms:Decrypt", "kms:CreateGrant"]):
        raise error
    return key


def check_snapshot_key(snapshot, caller):
    """The key of an encrypted snapshot must be usable by the caller."""
    if snapshot.encrypted:
        check_key_usable(snapshot.kms_key_id or "", snapshot.account_id, snapshot.region, caller)


# --------------------------------------------------------------- status


def status_property(storage, default="available"):
    """A `status` attribute that shows simulated progress (see progress.py)."""

    def get(self):
        stored = self.__dict__.get(storage, default)
        if stored == "creating" and progress.progress_of(self) is None:
            stored = "available"  # moto's own one-shot 'creating'
        return progress.status_of(self, stored)

    def put(self, value):
        self.__dict__[storage] = value
        self.__dict__.pop("_adr_progress", None)

    return property(get, put)
