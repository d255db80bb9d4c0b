//! The source side's settings: the production cluster (or clusters), where
//! its copy goes, the key that encrypts it, the topics and retention.

use super::{DEFAULT_SNAPSHOT_PREFIX, PAIR_FIELDS, Reader, Retention, keys};
use crate::ids::{AccountId, Arn, ClusterId, Region};

/// Settings of the source side (account that owns the production cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSettings {
    pub account_id: AccountId,
    pub region: Region,
    /// The cluster a payload without `sourceClusterId` snapshots: the first of
    /// [`Self::cluster_ids`]. [`Self::for_cluster`] points it at one cluster.
    pub cluster_id: ClusterId,
    /// Every cluster this deployment may snapshot (`SOURCE_CLUSTER_ID`, then
    /// `SOURCE_CLUSTER_IDS`, then the sources of `CLUSTER_PAIRS`), no duplicates.
    pub cluster_ids: Vec<ClusterId>,
    /// Snapshot names are `{prefix}-{cluster}-{yyyymmddHHMMss}`.
    pub snapshot_prefix: String,
    pub target_account_id: AccountId,
    pub target_region: Region,
    /// The key in the target region the copy is encrypted with.
    pub kms_key_arn: Arn,
    pub notification_topic_arn: Option<Arn>,
    pub failure_topic_arn: Option<Arn>,
    /// Which of its snapshots (source region) and copies (target region) to keep.
    pub retention: Retention,
}

impl SourceSettings {
    /// Reads the source settings (collecting problems into `r`).
    pub fn read(r: &mut Reader<'_>) -> Option<Self> {
        use keys::*;
        let account_id = r.required::<AccountId>(SOURCE_ACCOUNT_ID);
        let region = r.required::<Region>(SOURCE_REGION);
        let cluster_ids = read_source_cluster_ids(r);
        let snapshot_prefix =
            r.optional_text(SNAPSHOT_PREFIX).unwrap_or_else(|| DEFAULT_SNAPSHOT_PREFIX.into());
        // The prefix starts the snapshot name, so it obeys the identifier rules.
        if let Err(e) = crate::ids::check_rds_identifier(&snapshot_prefix, 100) {
            r.problem(SNAPSHOT_PREFIX, e.to_string());
        } else {
            check_snapshot_name_lengths(r, &snapshot_prefix, &cluster_ids);
        }
        let target_account_id = r.required::<AccountId>(TARGET_ACCOUNT_ID);
        let target_region = r.required::<Region>(TARGET_REGION);
        let kms_key_arn = r.required::<Arn>(KMS_KEY_ARN);
        if let (Some(arn), Some(target_region)) = (&kms_key_arn, &target_region) {
            check_kms_key(r, arn, target_region, account_id.as_ref());
        }
        for (removed, why) in REMOVED {
            if r.origin.raw(*removed).is_some() {
                r.problem(*removed, *why);
            }
        }
        let retention = Retention::read(r, SOURCE_RETAIN_SNAPSHOTS, SOURCE_RETAIN_DAYS);
        let notification_topic_arn = r.optional::<Arn>(NOTIFICATION_TOPIC_ARN);
        let failure_topic_arn = r.optional::<Arn>(SOURCE_FAILURE_TOPIC_ARN);
        for (k, arn) in [
            (NOTIFICATION_TOPIC_ARN, &notification_topic_arn),
            (SOURCE_FAILURE_TOPIC_ARN, &failure_topic_arn),
        ] {
            if let Some(arn) = arn
                && let Err(e) = arn.expect_kind("sns", "")
            {
                r.problem(k, e.to_string());
            }
        }
        if let (Some(a), Some(b), Some(ra), Some(rb)) =
            (&account_id, &target_account_id, &region, &target_region)
            && a == b
            && ra == rb
        {
            r.problem(TARGET_REGION, "target account and region equal the source's: nothing would be cross-account or cross-region");
        }
        Some(Self {
            account_id: account_id?,
            region: region?,
            cluster_id: cluster_ids.first()?.clone(),
            cluster_ids,
            snapshot_prefix,
            target_account_id: target_account_id?,
            target_region: target_region?,
            kms_key_arn: kms_key_arn?,
            notification_topic_arn,
            failure_topic_arn,
            retention,
        })
    }
}

/// Each run's snapshot, and its copies in the target region and account,
/// are named `{prefix}-{cluster}-{yyyymmddHHMMss}`; RDS allows cluster
/// snapshot identifiers of 1 to 63 characters (RDS API Reference,
/// CreateDBClusterSnapshot and CopyDBClusterSnapshot,
/// `DBClusterSnapshotIdentifier` / `TargetDBClusterSnapshotIdentifier`:
/// <https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBClusterSnapshot.html>).
/// A name that could not be created is refused at load, with its length.
fn check_snapshot_name_lengths(r: &mut Reader<'_>, prefix: &str, clusters: &[ClusterId]) {
    let max = crate::ids::MAX_RDS_ID;
    for cluster in clusters {
        let len = prefix.len() + 1 + cluster.as_str().len() + 1 + "yyyymmddHHMMss".len();
        if len > max {
            r.problem(
                keys::SNAPSHOT_PREFIX,
                format!(
                    "makes the snapshot names of cluster {cluster}, {prefix}-{cluster}-{{yyyymmddHHMMss}},                      {len} characters long; RDS allows at most {max}: shorten the prefix (or the cluster id)"
                ),
            );
        }
    }
}

fn check_kms_key(r: &mut Reader<'_>, arn: &Arn, target_region: &Region, source_account: Option<&AccountId>) {
    if let Err(e) = arn.expect_kind("kms", "key/") {
        r.problem(
            keys::KMS_KEY_ARN,
            format!("{e}; aliases are not accepted because a share needs the key's ARN"),
        );
    } else if arn.region().as_ref() != Some(target_region) {
        r.problem(
            keys::KMS_KEY_ARN,
            format!(
                "key is in region {} but the copy is made in the target region {target_region}: a KMS key only encrypts in its own region",
                arn.region().map(|r| r.to_string()).unwrap_or_else(|| "(none)".into())
            ),
        );
    } else if let Some(acct) = source_account
        && arn.account().as_ref() != Some(acct)
    {
        r.problem(keys::KMS_KEY_ARN, format!("key must belong to the source account {acct}"));
    }
}

/// `SOURCE_CLUSTER_ID`, then `SOURCE_CLUSTER_IDS`, then the sources of
/// `CLUSTER_PAIRS` (read quietly: the target reader names their problems).
fn read_source_cluster_ids(r: &mut Reader<'_>) -> Vec<ClusterId> {
    use keys::*;
    let mut ids: Vec<ClusterId> = Vec::new();
    let add = |ids: &mut Vec<ClusterId>, id: ClusterId| {
        if !ids.iter().any(|c| c.as_str().eq_ignore_ascii_case(id.as_str())) {
            ids.push(id);
        }
    };
    let single_given = r.origin.raw(SOURCE_CLUSTER_ID).is_some();
    if let Some(id) = r.optional::<ClusterId>(SOURCE_CLUSTER_ID) {
        add(&mut ids, id);
    }
    let listed = r.list(SOURCE_CLUSTER_IDS);
    for raw in &listed {
        match raw.parse::<ClusterId>() {
            Ok(id) => add(&mut ids, id),
            Err(e) => r.problem(SOURCE_CLUSTER_IDS, e.to_string()),
        }
    }
    let entries = {
        let mut quiet = Reader::new(r.origin);
        quiet.pair_entries(CLUSTER_PAIRS)
    };
    for (_, fields) in entries {
        if let Some(id) = fields.get(PAIR_FIELDS[0]).and_then(|v| v.parse::<ClusterId>().ok()) {
            add(&mut ids, id);
        }
    }
    if ids.is_empty() && !single_given && listed.is_empty() {
        r.problem(
            SOURCE_CLUSTER_ID,
            "is required but not set (or list several clusters in SOURCE_CLUSTER_IDS)",
        );
    }
    ids
}

impl SourceSettings {
    /// Whether `cluster` is one of the configured source clusters.
    pub fn serves(&self, cluster: &str) -> bool {
        self.cluster_ids.iter().any(|c| c.as_str().eq_ignore_ascii_case(cluster))
    }

    /// These settings for one run item: `cluster_id` becomes the payload's
    /// `sourceClusterId`, which must be a configured cluster (a payload never
    /// chooses an arbitrary cluster). Without one, the only configured
    /// cluster; with several configured, the payload must name one.
    pub fn for_cluster(&self, cluster: Option<&ClusterId>) -> crate::DrResult<Self> {
        let configured = || self.cluster_ids.iter().map(ClusterId::as_str).collect::<Vec<_>>().join(", ");
        let chosen = match cluster {
            None if self.cluster_ids.len() <= 1 => return Ok(self.clone()),
            None => {
                return Err(crate::DrError::invalid_input(format!(
                    "payload names no sourceClusterId, and this deployment snapshots {} clusters ({}): \
                     start the run with {{\"clusters\": [{{\"sourceClusterId\": ...}}, ...]}}",
                    self.cluster_ids.len(),
                    configured()
                )));
            }
            Some(c) => self.cluster_ids.iter().find(|id| id.as_str().eq_ignore_ascii_case(c.as_str())),
        };
        let Some(chosen) = chosen else {
            return Err(crate::DrError::invalid_input(format!(
                "payload names source cluster {}, which is not one this deployment snapshots ({}: {})",
                cluster.map(ClusterId::as_str).unwrap_or_default(),
                keys::SOURCE_CLUSTER_IDS.env,
                configured()
            )));
        };
        let mut settings = self.clone();
        settings.cluster_id = chosen.clone();
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Origin;
    use crate::settings::tests::{SOURCE_ENV, env, source_settings, with};

    #[test]
    fn each_bad_source_setting_is_named_with_its_rule() {
        let same_account = ("TARGET_ACCOUNT_ID", Some("111111111111"));
        type Override<'a> = (&'a str, Option<&'a str>);
        let cases: &[(&str, Option<&str>, &str, Option<Override>)] = &[
            ("SOURCE_ACCOUNT_ID", None, "required", None),
            ("SOURCE_ACCOUNT_ID", Some("11111111111"), "12 digits", None),
            ("SOURCE_ACCOUNT_ID", Some("1111111111111"), "12 digits", None),
            ("SOURCE_ACCOUNT_ID", Some("11111111111x"), "12 digits", None),
            ("SOURCE_REGION", Some("us-west"), "did you mean us-west-1?", None),
            ("SOURCE_CLUSTER_ID", Some("Orders"), "must be lowercase", None),
            ("SOURCE_CLUSTER_ID", Some("1orders"), "start with a letter", None),
            ("SOURCE_CLUSTER_ID", Some("orders-"), "end with a hyphen", None),
            ("SOURCE_CLUSTER_ID", Some("or--ders"), "consecutive", None),
            ("SOURCE_CLUSTER_ID", Some("or_ders"), "only ASCII", None),
            ("SNAPSHOT_PREFIX", Some("dr_"), "only ASCII", None),
            ("TARGET_REGION", Some("mars-1"), "region name", None),
            ("TARGET_REGION", Some("us-west-2"), "equal the source", Some(same_account)),
            ("KMS_KEY_ARN", None, "required", None),
            ("KMS_KEY_ARN", Some("alias/aurora-dr"), "ARN", None),
            ("KMS_KEY_ARN", Some("arn:aws:kms:us-west-2:111111111111:key/abc"), "target region", None),
            ("KMS_KEY_ARN", Some("arn:aws:kms:us-west-1:333333333333:key/abc"), "source account", None),
            ("KMS_KEY_ARN", Some("arn:aws:kms:us-west-1:111111111111:alias/x"), "key/", None),
            ("NOTIFICATION_TOPIC_ARN", Some("arn:aws:sqs:us-west-2:111111111111:q"), "sns", None),
            (
                "ALLOW_UNENCRYPTED_SOURCE",
                Some("true"),
                "cannot encrypt an unencrypted cluster snapshot",
                None,
            ),
        ];
        for (key, value, rule, also) in cases {
            let mut pairs: Vec<(&str, &str)> = SOURCE_ENV.to_vec();
            for (k, v) in std::iter::once((*key, *value)).chain(*also) {
                pairs.retain(|(pk, _)| *pk != k);
                if let Some(v) = v {
                    pairs.push((k, v));
                }
            }
            let origin = env(&pairs);
            let mut r = Reader::new(&origin);
            let _ = SourceSettings::read(&mut r);
            let errors = r.finish().expect_err(key).0;
            assert!(
                errors.iter().any(|e| e.name == *key && e.problem.contains(rule)),
                "{key}={value:?}: want {rule:?} in {errors:?}"
            );
        }
    }

    #[test]
    fn source_clusters_come_from_the_single_key_and_the_list() {
        let mut pairs = SOURCE_ENV.to_vec();
        pairs.push(("SOURCE_CLUSTER_IDS", "billing, orders ,ledger"));
        let origin = env(&pairs);
        let mut r = Reader::new(&origin);
        let s = SourceSettings::read(&mut r).expect("settings");
        r.finish().expect("valid");
        let ids: Vec<&str> = s.cluster_ids.iter().map(ClusterId::as_str).collect();
        assert_eq!(ids, ["orders", "billing", "ledger"], "in order, without the duplicate");
        assert_eq!(s.cluster_id.as_str(), "orders");

        // The list alone is enough; a bad entry is named.
        let mut pairs: Vec<(&str, &str)> =
            SOURCE_ENV.iter().filter(|(k, _)| *k != "SOURCE_CLUSTER_ID").copied().collect();
        pairs.push(("SOURCE_CLUSTER_IDS", "billing,ledger"));
        let origin = env(&pairs);
        let mut r = Reader::new(&origin);
        let s = SourceSettings::read(&mut r).expect("settings");
        r.finish().expect("valid");
        assert_eq!(s.cluster_id.as_str(), "billing");
        for (value, rule) in [("billing,led--ger", "consecutive"), ("", "required")] {
            let origin = with(SOURCE_ENV, "SOURCE_CLUSTER_ID", None);
            let Origin::Env(mut map) = origin else { unreachable!() };
            map.insert("SOURCE_CLUSTER_IDS".into(), value.into());
            let origin = Origin::Env(map);
            let mut r = Reader::new(&origin);
            let _ = SourceSettings::read(&mut r);
            let errors = r.finish().expect_err(value).0;
            assert!(
                errors.iter().any(|e| e.name.starts_with("SOURCE_CLUSTER_ID") && e.problem.contains(rule)),
                "{value:?}: {errors:?}"
            );
        }
    }

    #[test]
    fn a_payload_picks_only_a_configured_source_cluster() {
        let mut s = source_settings();
        assert_eq!(s.for_cluster(None).expect("single").cluster_id.as_str(), "orders");
        s.cluster_ids = vec!["orders".parse().expect("id"), "billing".parse().expect("id")];
        let billing: ClusterId = "billing".parse().expect("id");
        let chosen = s.for_cluster(Some(&billing)).expect("configured");
        assert_eq!(chosen.cluster_id.as_str(), "billing");
        assert!(s.serves("BILLING") && !s.serves("payroll"));
        let payroll: ClusterId = "payroll".parse().expect("id");
        let err = s.for_cluster(Some(&payroll)).expect_err("not configured");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert!(err.to_string().contains("payroll") && err.to_string().contains("orders, billing"), "{err}");
        let err = s.for_cluster(None).expect_err("ambiguous");
        assert!(err.to_string().contains("clusters"), "{err}");
    }
}
