//! The source side's settings: the production cluster (or clusters), the DR
//! targets its copies go to, the key per target region that encrypts them,
//! the topics and retention.
//!
//! Many targets: `TARGET_ACCOUNT_ID` and `TARGET_REGION` are comma lists, one
//! region per account in the same order (a TOML file lists `[[targets]]`
//! tables instead), and `KMS_KEY_ARN` lists one key per target region. A
//! single account and region stay the one-target case.

use std::collections::BTreeMap;

use super::{DEFAULT_SNAPSHOT_PREFIX, PAIR_FIELDS, Reader, Retention, keys};
use crate::ids::{AccountId, Arn, ClusterId, Region};

/// The TOML tables of many targets: `[[targets]]`, each with the keys of a
/// single `[target]` table. The Lambdas' environment has no such key: the
/// source side reads the targets from the `TARGET_ACCOUNT_ID` and
/// `TARGET_REGION` lists, and each target side's stack has its own single
/// values.
pub const TARGETS_TABLE: &str = "targets";

/// How many AWS accounts one manual snapshot may be shared with: 20 (Aurora
/// User Guide, "Sharing a DB cluster snapshot":
/// <https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-share-snapshot.html>).
/// Each target region gets one copy shared with every target account there,
/// so a region holds at most this many target accounts.
pub const MAX_SHARED_ACCOUNTS: usize = 20;

/// One DR target as the source side sees it: an account and the region its
/// copy is made in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrTarget {
    pub account_id: AccountId,
    pub region: Region,
}

/// One target region: the one copy made there, the source account's key in
/// that region it is encrypted with, and every target account it is shared
/// with (in configured order, at most [`MAX_SHARED_ACCOUNTS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRegion {
    pub region: Region,
    pub kms_key_arn: Arn,
    pub account_ids: Vec<AccountId>,
}

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
    /// The first target's account (see [`Self::targets`]).
    pub target_account_id: AccountId,
    /// The first target's region; [`Self::for_region`] points it, with
    /// [`Self::kms_key_arn`], at one target region.
    pub target_region: Region,
    /// The key in [`Self::target_region`] the copy there is encrypted with.
    pub kms_key_arn: Arn,
    /// Every DR target, in configured order, no two alike.
    pub targets: Vec<DrTarget>,
    /// The targets grouped by region (in order of each region's first
    /// target), each with its key: one copy per region, shared with that
    /// region's accounts.
    pub target_regions: Vec<TargetRegion>,
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
        let targets = read_targets(r, account_id.as_ref(), region.as_ref());
        let target_regions = read_kms_keys(r, &targets, account_id.as_ref());
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
        let targets = targets?;
        let target_regions = target_regions?;
        let first = targets.first()?;
        let first_region = target_regions.first()?;
        Some(Self {
            account_id: account_id?,
            region: region?,
            cluster_id: cluster_ids.first()?.clone(),
            cluster_ids,
            snapshot_prefix,
            target_account_id: first.account_id.clone(),
            target_region: first_region.region.clone(),
            kms_key_arn: first_region.kms_key_arn.clone(),
            targets,
            target_regions,
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

fn check_kms_key(r: &mut Reader<'_>, arn: &Arn, regions: &[Region], source_account: Option<&AccountId>) {
    let key = keys::KMS_KEY_ARN;
    if let Err(e) = arn.expect_kind("kms", "key/") {
        r.problem(key, format!("{e}; aliases are not accepted because a share needs the key's ARN"));
    } else if !arn.region().is_some_and(|region| regions.contains(&region)) {
        let names: Vec<&str> = regions.iter().map(Region::as_str).collect();
        r.problem(
            key,
            format!(
                "key {arn} is in region {} but the copies are made in the target region{} {}: a KMS key only \
                 encrypts in its own region",
                arn.region().map(|r| r.to_string()).unwrap_or_else(|| "(none)".into()),
                if names.len() == 1 { "" } else { "s" },
                names.join(", ")
            ),
        );
    } else if let Some(acct) = source_account
        && arn.account().as_ref() != Some(acct)
    {
        r.problem(key, format!("key {arn} must belong to the source account {acct}"));
    }
}

/// The targets: `[[targets]]` tables (TOML), or the `TARGET_ACCOUNT_ID` and
/// `TARGET_REGION` lists, one region per account in the same order. Checked
/// together: no target twice, none equal to the source's account and region,
/// at most [`MAX_SHARED_ACCOUNTS`] accounts in one region.
fn read_targets(
    r: &mut Reader<'_>,
    source: Option<&AccountId>,
    region: Option<&Region>,
) -> Option<Vec<DrTarget>> {
    use keys::{TARGET_ACCOUNT_ID, TARGET_REGION};
    let tables = r.origin.table_entries(TARGETS_TABLE);
    // (account, region, the setting names a problem of this target is told under)
    let mut read: Vec<(DrTarget, String)> = Vec::new();
    let mut complete = true;
    if !tables.is_empty() {
        if r.origin.raw(TARGET_ACCOUNT_ID).is_some() || r.origin.raw(TARGET_REGION).is_some() {
            r.problem_named(
                TARGETS_TABLE.into(),
                "a [target] table and [[targets]] tables together: list every target as a [[targets]] table \
                 (a single [target] is the one-target form)",
            );
            complete = false;
        }
        for (name, fields) in tables {
            let account = r.named_value::<AccountId>(&format!("{name}.account_id"), fields.get("account_id"));
            let region = r.named_value::<Region>(&format!("{name}.region"), fields.get("region"));
            match (account, region) {
                (Some(account_id), Some(region)) => read.push((DrTarget { account_id, region }, name)),
                _ => complete = false,
            }
        }
    } else {
        let accounts = r.list(TARGET_ACCOUNT_ID);
        let regions = r.list(TARGET_REGION);
        for (k, list) in [(TARGET_ACCOUNT_ID, &accounts), (TARGET_REGION, &regions)] {
            if list.is_empty() {
                r.problem(k, "is required but not set");
                complete = false;
            }
        }
        let accounts: Vec<Option<AccountId>> =
            accounts.iter().map(|a| r.parse(TARGET_ACCOUNT_ID, a)).collect();
        let regions: Vec<Option<Region>> = regions.iter().map(|a| r.parse(TARGET_REGION, a)).collect();
        if !accounts.is_empty() && !regions.is_empty() && accounts.len() != regions.len() {
            r.problem(
                TARGET_REGION,
                format!(
                    "lists {} region(s) for the {} account(s) of {}: give each target account its region, in \
                     the same order",
                    regions.len(),
                    accounts.len(),
                    r.origin.name(TARGET_ACCOUNT_ID)
                ),
            );
            complete = false;
        }
        for (i, (account, region)) in accounts.into_iter().zip(regions).enumerate() {
            match (account, region) {
                (Some(account_id), Some(region)) => {
                    let name = if i == 0 {
                        r.origin.name(TARGET_REGION).to_owned()
                    } else {
                        format!("{} (target {})", r.origin.name(TARGET_REGION), i + 1)
                    };
                    read.push((DrTarget { account_id, region }, name));
                }
                _ => complete = false,
            }
        }
    }
    let problems_before = r.errors.len();
    let mut per_region: BTreeMap<&Region, usize> = BTreeMap::new();
    for (i, (target, name)) in read.iter().enumerate() {
        if let Some((_, earlier)) = read[..i].iter().find(|(t, _)| t == target) {
            r.problem_named(
                name.clone(),
                format!(
                    "target account {} in {} is listed twice (also {earlier}): a target restores over its own \
                     names, so two alike would restore over each other",
                    target.account_id, target.region
                ),
            );
        }
        if Some(&target.account_id) == source && Some(&target.region) == region {
            r.problem_named(
                name.clone(),
                "target account and region equal the source's: nothing would be cross-account or cross-region",
            );
        }
        *per_region.entry(&target.region).or_default() += 1;
    }
    for (region, count) in per_region {
        if count > MAX_SHARED_ACCOUNTS {
            r.problem_named(
                if r.origin.raw(TARGET_ACCOUNT_ID).is_some() {
                    r.origin.name(TARGET_ACCOUNT_ID).to_owned()
                } else {
                    TARGETS_TABLE.to_owned()
                },
                format!(
                    "{count} target accounts in {region}: RDS shares a snapshot with at most {MAX_SHARED_ACCOUNTS} \
                     accounts and each region's copy is shared with all of its targets; move some targets to another \
                     region (or another source deployment)"
                ),
            );
        }
    }
    let targets: Vec<DrTarget> = read.into_iter().map(|(t, _)| t).collect();
    (complete && r.errors.len() == problems_before && !targets.is_empty()).then_some(targets)
}

/// `KMS_KEY_ARN`: one key of the source account per target region (a comma
/// list, or a list of strings in TOML), and no key without a target region.
fn read_kms_keys(
    r: &mut Reader<'_>,
    targets: &Option<Vec<DrTarget>>,
    source: Option<&AccountId>,
) -> Option<Vec<TargetRegion>> {
    let key = keys::KMS_KEY_ARN;
    let listed = r.list(key);
    if listed.is_empty() {
        r.problem(key, "is required but not set");
        return None;
    }
    let arns: Vec<Option<Arn>> = listed.iter().map(|a| r.parse::<Arn>(key, a)).collect();
    let targets = targets.as_ref()?;
    let mut regions: Vec<Region> = Vec::new();
    for t in targets {
        if !regions.contains(&t.region) {
            regions.push(t.region.clone());
        }
    }
    let mut by_region: BTreeMap<Region, Arn> = BTreeMap::new();
    let mut complete = arns.iter().all(Option::is_some);
    for arn in arns.into_iter().flatten() {
        let before = r.errors.len();
        check_kms_key(r, &arn, &regions, source);
        let Some(region) = arn.region().filter(|_| r.errors.len() == before) else {
            complete = false;
            continue;
        };
        if let Some(other) = by_region.get(&region) {
            r.problem(
                key,
                format!("gives two keys for {region} ({other} and {arn}): one copy per region, one key"),
            );
            complete = false;
        } else {
            by_region.insert(region, arn);
        }
    }
    let mut out = Vec::new();
    for region in regions {
        let account_ids =
            targets.iter().filter(|t| t.region == region).map(|t| t.account_id.clone()).collect();
        match by_region.remove(&region) {
            Some(kms_key_arn) => out.push(TargetRegion { region, kms_key_arn, account_ids }),
            None if complete => {
                r.problem(
                    key,
                    format!("has no key in the target region {region}: the copy there is encrypted with a key of the source account in {region}"),
                );
                complete = false;
            }
            None => {}
        }
    }
    complete.then_some(out)
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
    /// These settings for one target region: `target_region` and
    /// `kms_key_arn` become that region's, `target_account_id` its first
    /// target's (Share shares with [`Self::accounts_in`] all of them). A
    /// payload never names a region the deployment does not copy to.
    pub fn for_region(&self, region: &Region) -> crate::DrResult<Self> {
        let Some(chosen) = self.target_regions.iter().find(|t| &t.region == region) else {
            return Err(crate::DrError::invalid_input(format!(
                "payload names target region {region}, which is not one this deployment copies to ({}: {})",
                keys::TARGET_REGION.env,
                self.target_regions.iter().map(|t| t.region.as_str()).collect::<Vec<_>>().join(", ")
            )));
        };
        let mut settings = self.clone();
        if &self.target_region == region {
            // The region these settings already point at: its fields stand.
            return Ok(settings);
        }
        settings.target_region = chosen.region.clone();
        settings.kms_key_arn = chosen.kms_key_arn.clone();
        if let Some(first) = chosen.account_ids.first() {
            settings.target_account_id = first.clone();
        }
        Ok(settings)
    }

    /// These settings for a run item's `targetRegion`: [`Self::for_region`]
    /// of it; without one, the only target region (many regions: the
    /// payload must name one, else `InvalidInput`).
    pub fn for_run_region(&self, region: Option<&Region>) -> crate::DrResult<Self> {
        match region {
            Some(region) => self.for_region(region),
            None if self.target_regions.len() <= 1 => Ok(self.clone()),
            None => Err(crate::DrError::invalid_input(format!(
                "payload names no targetRegion, and this deployment copies to {} regions ({})",
                self.target_regions.len(),
                self.target_regions.iter().map(|t| t.region.as_str()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// Sets the key of one target region (the drill's, once it has created
    /// it); a region without targets is left alone.
    pub fn set_kms_key(&mut self, region: &Region, arn: Arn) {
        if &self.target_region == region {
            self.kms_key_arn = arn.clone();
        }
        if let Some(r) = self.target_regions.iter_mut().find(|r| &r.region == region) {
            r.kms_key_arn = arn;
        }
    }

    /// The target accounts in `region` (none for a region without targets).
    pub fn accounts_in(&self, region: &Region) -> &[AccountId] {
        self.target_regions.iter().find(|t| &t.region == region).map_or(&[], |t| t.account_ids.as_slice())
    }

    /// Whether `account` in `region` is a configured target.
    pub fn has_target(&self, account: &AccountId, region: &Region) -> bool {
        self.targets.iter().any(|t| &t.account_id == account && &t.region == region)
    }

    /// `InvalidInput` unless `account` is a target in the region these
    /// settings serve (a payload never chooses whom a copy goes to).
    pub fn require_target(&self, account: &AccountId) -> crate::error::DrResult<()> {
        if self.has_target(account, &self.target_region) {
            return Ok(());
        }
        let accounts: Vec<&str> = self.accounts_in(&self.target_region).iter().map(|a| a.as_str()).collect();
        Err(crate::error::DrError::invalid_input(format!(
            "payload names target account {account}, which is not a target in {} (this deployment shares its \
             copy there with {})",
            self.target_region,
            accounts.join(", ")
        )))
    }

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

    const KEY_1: &str = "arn:aws:kms:us-west-1:111111111111:key/0f0e0d0c-0000-4000-8000-000000000001";
    const KEY_2: &str = "arn:aws:kms:eu-west-1:111111111111:key/0f0e0d0c-0000-4000-8000-000000000003";
    const KEYS_1_2: &str = "arn:aws:kms:us-west-1:111111111111:key/0f0e0d0c-0000-4000-8000-000000000001,\
                            arn:aws:kms:eu-west-1:111111111111:key/0f0e0d0c-0000-4000-8000-000000000003";
    const KEYS_1_1: &str = "arn:aws:kms:us-west-1:111111111111:key/0f0e0d0c-0000-4000-8000-000000000001,\
                            arn:aws:kms:us-west-1:111111111111:key/0f0e0d0c-0000-4000-8000-000000000009";

    /// [`SOURCE_ENV`] with `overrides` (a `None` removes the key), read.
    fn read_with(overrides: &[(&str, Option<&str>)]) -> (Option<SourceSettings>, Vec<String>) {
        let mut pairs: Vec<(&str, &str)> = SOURCE_ENV.to_vec();
        for (k, v) in overrides {
            pairs.retain(|(pk, _)| pk != k);
            if let Some(v) = v {
                pairs.push((k, v));
            }
        }
        let origin = env(&pairs);
        let mut r = Reader::new(&origin);
        let s = SourceSettings::read(&mut r);
        (s, r.into_errors().iter().map(ToString::to_string).collect())
    }

    #[test]
    fn one_target_is_one_region_with_its_key() {
        let s = source_settings();
        assert_eq!(s.targets.len(), 1);
        assert_eq!(s.target_regions.len(), 1);
        let region = &s.target_regions[0];
        assert_eq!(region.region.as_str(), "us-west-1");
        assert_eq!(region.kms_key_arn, s.kms_key_arn);
        assert_eq!(region.account_ids, std::slice::from_ref(&s.target_account_id));
    }

    #[test]
    fn many_targets_group_by_region_each_with_its_key() {
        let (s, errors) = read_with(&[
            ("TARGET_ACCOUNT_ID", Some("222222222222, 333333333333,444444444444")),
            ("TARGET_REGION", Some("us-west-1,eu-west-1,us-west-1")),
            ("KMS_KEY_ARN", Some(KEYS_1_2)),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        let s = s.expect("settings");
        let regions: Vec<(&str, &str, Vec<&str>)> = s
            .target_regions
            .iter()
            .map(|r| {
                (
                    r.region.as_str(),
                    r.kms_key_arn.as_str(),
                    r.account_ids.iter().map(|a| a.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            regions,
            [
                ("us-west-1", KEY_1, vec!["222222222222", "444444444444"]),
                ("eu-west-1", KEY_2, vec!["333333333333"]),
            ],
            "in order of each region's first target, keys matched by region"
        );
        assert_eq!((s.target_account_id.as_str(), s.target_region.as_str()), ("222222222222", "us-west-1"));
        let eu: Region = "eu-west-1".parse().expect("region");
        let one = s.for_region(&eu).expect("configured");
        assert_eq!((one.target_region.as_str(), one.kms_key_arn.as_str()), ("eu-west-1", KEY_2));
        assert_eq!(one.target_account_id.as_str(), "333333333333");
        assert_eq!(s.accounts_in(&"us-west-1".parse().expect("region")).len(), 2);
        assert!(s.has_target(&"333333333333".parse().expect("id"), &eu));
        assert!(!s.has_target(&"222222222222".parse().expect("id"), &eu));
        let err = s.for_region(&"ap-south-1".parse().expect("region")).expect_err("not a target region");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert!(err.to_string().contains("us-west-1, eu-west-1"), "{err}");
    }

    #[test]
    fn bad_target_lists_are_named_with_their_rule() {
        type Case = (&'static [(&'static str, Option<&'static str>)], &'static str, &'static str);
        let cases: &[Case] = &[
            (
                &[("TARGET_ACCOUNT_ID", Some("222222222222,333333333333"))],
                "TARGET_REGION",
                "lists 1 region(s) for the 2 account(s) of TARGET_ACCOUNT_ID",
            ),
            (
                &[
                    ("TARGET_ACCOUNT_ID", Some("222222222222,222222222222")),
                    ("TARGET_REGION", Some("us-west-1,us-west-1")),
                ],
                "TARGET_REGION (target 2)",
                "listed twice",
            ),
            (
                &[
                    ("TARGET_ACCOUNT_ID", Some("222222222222,111111111111")),
                    ("TARGET_REGION", Some("us-west-1,us-west-2")),
                ],
                "TARGET_REGION (target 2)",
                "equal the source",
            ),
            (
                &[
                    ("TARGET_ACCOUNT_ID", Some("222222222222,333333333333")),
                    ("TARGET_REGION", Some("us-west-1,eu-west-1")),
                ],
                "KMS_KEY_ARN",
                "has no key in the target region eu-west-1",
            ),
            (
                &[("KMS_KEY_ARN", Some(KEYS_1_2))],
                "KMS_KEY_ARN",
                "copies are made in the target region us-west-1",
            ),
            (&[("KMS_KEY_ARN", Some(KEYS_1_1))], "KMS_KEY_ARN", "two keys for us-west-1"),
            (&[("TARGET_ACCOUNT_ID", Some("222222222222,12"))], "TARGET_ACCOUNT_ID", "12 digits"),
        ];
        for (overrides, name, rule) in cases {
            let (s, errors) = read_with(overrides);
            assert!(s.is_none(), "{overrides:?}");
            assert!(
                errors.iter().any(|e| e.starts_with(&format!("{name}: ")) && e.contains(rule)),
                "{overrides:?}: want {name}: {rule:?} in {errors:#?}"
            );
        }
    }

    /// RDS shares one snapshot with at most 20 accounts, and each region's
    /// copy is shared with all of its targets: a 21st account in one region
    /// is refused at load, 20 there and one more elsewhere are fine.
    #[test]
    fn at_most_twenty_target_accounts_share_one_region() {
        let accounts =
            |n: usize| (0..n).map(|i| format!("{:012}", 200_000_000_000u64 + i as u64)).collect::<Vec<_>>();
        let regions = |n: usize, last: &str| {
            let mut r = vec!["us-west-1".to_owned(); n - 1];
            r.push(last.to_owned());
            r
        };
        let read = |n: usize, last: &str| {
            let (a, r) = (accounts(n).join(","), regions(n, last).join(","));
            let key = if last == "eu-west-1" { KEYS_1_2 } else { KEY_1 };
            read_with(&[
                ("TARGET_ACCOUNT_ID", Some(&a)),
                ("TARGET_REGION", Some(&r)),
                ("KMS_KEY_ARN", Some(key)),
            ])
        };
        let (s, errors) = read(21, "us-west-1");
        assert!(s.is_none());
        assert!(
            errors.iter().any(|e| e.starts_with("TARGET_ACCOUNT_ID: 21 target accounts in us-west-1")
                && e.contains("at most 20")),
            "{errors:#?}"
        );
        let (s, errors) = read(21, "eu-west-1");
        assert!(errors.is_empty(), "{errors:#?}");
        assert_eq!(s.expect("20 + 1").target_regions[0].account_ids.len(), 20);
        let (s, errors) = read(20, "us-west-1");
        assert!(errors.is_empty() && s.is_some(), "{errors:#?}");
    }
}
