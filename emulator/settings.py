"""Which RDS rules the emulator enforces, and its quotas.

Every rule that makes the emulator refuse or delay what plain moto accepts at
once is a named switch, on by default (strict, as RDS). Each can be turned
off on its own (lenient) from the launcher (`--strict JSON`), the control
endpoint (`POST /_aurora_dr/strict`) or the Rust `EmulatorConfig`.
README.md lists every switch with the RDS document it follows.
"""

import threading

SWITCHES = (
    "identifiers",  # 1-63 letters, digits, hyphens; first a letter; no --; no trailing -
    "aws_managed_key",  # StorageEncrypted without KmsKeyId: the account's alias/aws/rds key
    "managed_key_share",  # a snapshot under the AWS managed key cannot be shared
    "copy_encryption",  # no KmsKeyId for an unencrypted copy; KmsKeyId for encrypted cross-region/account
    "deletion_protection",  # protected clusters cannot be deleted; Aurora instances always can
    "serverless",  # db.serverless needs the cluster's ServerlessV2ScalingConfiguration
    "restore_from_snapshot",  # a restore takes only what the snapshot holds, not the source's settings
    "public_access",  # PubliclyAccessible defaults as RDS documents
    "quotas",  # clusters, instances, manual snapshots, copies, share accounts
    "transitions",  # `deleting` before gone; operations on busy resources refused
    "dns",  # a renamed endpoint resolves only after a delay; the old name lingers
)

# RDS defaults per account and Region (Aurora user guide, "Quotas and
# constraints for Amazon Aurora"; "Copying a DB cluster snapshot";
# "Sharing a DB cluster snapshot").
QUOTA_DEFAULTS = {
    "clusters": 40,
    "instances": 40,
    "manual_cluster_snapshots": 100,
    "concurrent_copies": 5,
    "accounts_per_share": 20,
}

_lock = threading.Lock()


class Settings:
    def __init__(self):
        self.strict = {name: True for name in SWITCHES}
        self.quotas = dict(QUOTA_DEFAULTS)

    def configure_strict(self, spec):
        """`true`/`false` for every switch, or `{"switch": bool, ...}`."""
        if isinstance(spec, bool):
            update = {name: spec for name in SWITCHES}
        elif isinstance(spec, dict):
            unknown = set(spec) - set(SWITCHES)
            if unknown:
                raise ValueError(f"unknown strict switches {sorted(unknown)}; known: {list(SWITCHES)}")
            if not all(isinstance(v, bool) for v in spec.values()):
                raise ValueError("strict switches take true or false")
            update = dict(spec)
        else:
            raise ValueError("strict must be true, false or an object of switch -> bool")
        with _lock:
            self.strict.update(update)

    def configure_quotas(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("quotas must be an object of quota -> limit")
        unknown = set(spec) - set(QUOTA_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown quotas {sorted(unknown)}; known: {list(QUOTA_DEFAULTS)}")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in spec.values()):
            raise ValueError("quota limits are non-negative integers")
        with _lock:
            self.quotas.update(spec)

    def on(self, name):
        with _lock:
            return self.strict[name]

    def quota(self, name):
        with _lock:
            return self.quotas[name]

    def to_json(self):
        with _lock:
            return {"strict": dict(self.strict), "quotas": dict(self.quotas)}


SETTINGS = Settings()


def strict(name):
    """True when the named RDS rule is enforced."""
    return SETTINGS.on(name)
