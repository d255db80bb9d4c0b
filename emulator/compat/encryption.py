"""KMS keys of encrypted clusters and snapshots.

- The AWS managed key. API reference, CreateDBCluster `KmsKeyId`: with
  StorageEncrypted and no KmsKeyId, RDS uses the account's default KMS key of
  the Region; AWS KMS developer guide, "AWS managed keys": that key is
  `alias/aws/rds`, created by the service on first use, managed by AWS, and
  its policy lets only the account's principals use it through RDS.
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBCluster.html
  https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-key
  moto left the placeholder `default_kms_key_id` (also on unencrypted
  clusters), which no KMS call or copy could use.
- Sharing. Aurora user guide, "Sharing encrypted snapshots": a snapshot
  encrypted with the account's default KMS key cannot be shared.
  https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/share-encrypted-snapshot.html
  The page names no error code; of the codes ModifyDBClusterSnapshotAttribute
  documents, the emulator answers InvalidDBClusterSnapshotStateFault (HTTP 400).
- Copying. API reference, CopyDBClusterSnapshot `KmsKeyId`: copying an
  unencrypted snapshot with a KmsKeyId returns an error (the page names no
  code: the emulator answers InvalidParameterCombination, HTTP 400, from
  "Common Errors"); an encrypted snapshot copied to another Region, or shared
  from another account, needs a KmsKeyId (KMSKeyNotAccessibleFault, HTTP 400,
  naming key [None], as RDS answers it).
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBClusterSnapshot.html
  https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/CommonErrors.html
"""

import json

from moto.kms.models import kms_backends
from moto.rds import exceptions as rds_errors
from moto.rds import models as rds

from compat.common import find_key, rds_error, resolve_snapshot, wrap
from settings import strict

ALIAS = "alias/aws/rds"


def managed_key_policy(account, region):
    """The policy of an AWS managed key for RDS: usable by the account's
    principals through RDS only; its metadata readable by the account."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Id": "auto-rds-2",
            "Statement": [
                {
                    "Sid": "Allow access through RDS for all principals in the account "
                    "that are authorized to use RDS",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": [
                        "kms:Encrypt",
                        "kms:Decrypt",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:CreateGrant",
                        "kms:ListGrants",
                        "kms:DescribeKey",
                    ],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {
                            "kms:CallerAccount": account,
                            "kms:ViaService": f"rds.{region}.amazonaws.com",
                        }
                    },
                },
                {
                    "Sid": "Allow direct access to key metadata to the account",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
                    "Resource": "*",
                },
            ],
        }
    )


def managed_key(account, region):
    """The account's `alias/aws/rds` key in the Region, created on first use."""
    key = kms_backends[account][region].describe_key(ALIAS)
    if key.key_manager != "AWS":
        key.key_manager = "AWS"
        key.description = "Default key that protects my RDS database volumes when no other key is defined"
        key.policy = managed_key_policy(account, region)
    return key


def is_managed(key_ref, account, region):
    key = find_key(key_ref or "", account, region)
    return key is not None and key.key_manager == "AWS"


def install():
    @wrap(rds.RDSBackend, "create_db_cluster")
    def create_db_cluster(original, self, kwargs):
        if strict("aws_managed_key") and not isinstance(kwargs, dict):  # not a restore
            if kwargs.get("storage_encrypted") and not kwargs.get("kms_key_id"):
                kwargs["kms_key_id"] = managed_key(self.account_id, self.region_name).arn
        cluster = original(self, kwargs)
        if strict("aws_managed_key") and not cluster.storage_encrypted:
            cluster.kms_key_id = None
        return cluster

    @wrap(rds.RDSBackend, "modify_db_cluster_snapshot_attribute")
    def share(original, self, db_cluster_snapshot_identifier, attribute_name, values_to_add=None, *a, **kw):
        if strict("managed_key_share") and attribute_name == "restore" and values_to_add:
            snapshot = resolve_snapshot(self, db_cluster_snapshot_identifier, same_region=True)
            if snapshot.encrypted and is_managed(snapshot.kms_key_id, snapshot.account_id, snapshot.region):
                raise rds_errors.InvalidDBClusterSnapshotStateFault(
                    f"DBClusterSnapshot {snapshot.db_cluster_snapshot_identifier} is encrypted with the "
                    "default KMS key of the account and cannot be shared; copy it under a customer "
                    "managed key and share the copy."
                )
        return original(self, db_cluster_snapshot_identifier, attribute_name, values_to_add, *a, **kw)

    @wrap(rds.RDSBackend, "copy_db_cluster_snapshot")
    def copy(
        original,
        self,
        source_db_cluster_snapshot_identifier,
        target_db_cluster_snapshot_identifier,
        kms_key_id=None,
        *a,
        **kw,
    ):
        if strict("copy_encryption"):
            source = resolve_snapshot(self, source_db_cluster_snapshot_identifier, same_region=False)
            if not source.encrypted and kms_key_id:
                raise rds_error(
                    "InvalidParameterCombination",
                    "You cannot encrypt an unencrypted DB cluster snapshot when you copy it: "
                    f"{source.db_cluster_snapshot_identifier} is not encrypted, "
                    "so KmsKeyId cannot be specified.",
                )
            elsewhere = source.region != self.region_name or source.account_id != self.account_id
            if source.encrypted and not kms_key_id and elsewhere:
                raise rds_errors.KMSKeyNotAccessibleFault("None")
        return original(
            self,
            source_db_cluster_snapshot_identifier,
            target_db_cluster_snapshot_identifier,
            kms_key_id,
            *a,
            **kw,
        )
