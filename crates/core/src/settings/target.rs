//! The target side's settings: where and how the DR copy is restored, the
//! names it is swapped in under, and, with many clusters, the cluster pairs
//! (one source cluster and the target names it is restored under each).

use std::collections::BTreeMap;

use super::{Key, Origin, Reader, Retention, SanitySettings, SettingError, keys};
use crate::ids::{AccountId, Arn, ClusterId, InstanceId, Region};

/// Settings of the target side (account and region of the DR copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSettings {
    pub account_id: AccountId,
    pub region: Region,
    pub source_account_id: AccountId,
    pub engine: String,
    pub instance_class: String,
    /// Aurora Serverless v2 capacity of the restored cluster; required with
    /// `instance_class = "db.serverless"`.
    pub serverless: Option<ServerlessCapacity>,
    /// How many instances the restored cluster gets (writer first).
    pub instance_count: u32,
    pub existing_cluster_id: ClusterId,
    pub temp_cluster_id: ClusterId,
    pub existing_instance_id: InstanceId,
    pub temp_instance_id: InstanceId,
    /// Every source cluster this side restores and the names it restores it
    /// under; the single-cluster keys above are one (the first) of them.
    /// [`Self::for_source`] points the single-cluster fields at one pair.
    pub pairs: Vec<ClusterPair>,
    pub source_topic_arn: Option<Arn>,
    pub state_machine_arn: Option<Arn>,
    pub failure_topic_arn: Option<Arn>,
    pub db_subnet_group: Option<String>,
    pub vpc_security_group_ids: Vec<String>,
    pub db_cluster_parameter_group: Option<String>,
    pub deletion_protection: bool,
    pub final_snapshot: bool,
    pub keep_failed_temp_cluster: bool,
    /// `ADOPT_EXISTING`: a cluster without aurora-dr's tags that already
    /// serves under the existing name (say, a DR copy made by hand before
    /// aurora-dr) may be replaced. Off (the default), Restore refuses such a
    /// cluster before anything is created, so a run never renames away a
    /// cluster it did not make unless told to. On, the first run renames it to
    /// `{existing}-old-{stamp}` like its own previous copy, and Terminate keeps
    /// it (aurora-dr deletes only what it created) and names it in the run's
    /// output as a kept cluster, with the commands that remove it.
    pub adopt_existing: bool,
    /// Which of the target account's own copies to keep.
    pub retention: Retention,
    /// The target account's own KMS key (target region) that Restore
    /// encrypts the DR cluster with, so that after the restore the cluster
    /// never depends on the source account's key (a cluster that loses access
    /// to its key becomes inaccessible). Required in a function's
    /// environment; optional in the CLI's TOML file, where the drill creates
    /// a key and the template's stack creates one when it is not given.
    pub kms_key_arn: Option<Arn>,
    /// `TARGET_OWN_COPY`: the shared snapshot is first copied into the target
    /// account under [`Self::kms_key_arn`] (CopyToOwnAccount) and the cluster
    /// restored from that copy, so the snapshot itself is kept in the target
    /// account too. Off by default.
    pub own_copy: bool,
    /// `WAIT_TOKENS_TABLE`: the DynamoDB table where WaitForTempCluster,
    /// WaitForTempInstances and WaitForSwappedCluster keep their task tokens
    /// until an RDS event (CompleteWait) or their own check completes them
    /// ([`crate::wait_tokens`]). Required by those waits only.
    pub wait_tokens_table: Option<String>,
    /// The SanityCheck step's probes (off without `SANITY_SECRET_ARN`);
    /// boxed to keep this struct, which every step context holds, small.
    pub sanity: Box<SanitySettings>,
}

/// Aurora Serverless v2 capacity range, in half ACUs (RDS takes capacities
/// in steps of 0.5 ACU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerlessCapacity {
    pub min_half_acus: u16,
    pub max_half_acus: u16,
}

impl ServerlessCapacity {
    pub fn min_acus(self) -> f64 {
        f64::from(self.min_half_acus) / 2.0
    }

    pub fn max_acus(self) -> f64 {
        f64::from(self.max_half_acus) / 2.0
    }
}

/// One capacity setting in half ACUs: a multiple of 0.5 within `lowest..=256`.
fn read_capacity(r: &mut Reader<'_>, key: Key, lowest: f64) -> Option<u16> {
    let raw = r.optional_text(key)?;
    match raw.trim().parse::<f64>() {
        Ok(acus) if (lowest..=256.0).contains(&acus) && (acus * 2.0).fract() == 0.0 => {
            // In range and a whole number of half ACUs: the cast is exact.
            Some((acus * 2.0) as u16)
        }
        _ => {
            r.problem(
                key,
                format!("must be a number of ACUs from {lowest} to 256 in steps of 0.5 (got {raw:?})"),
            );
            None
        }
    }
}

/// Serverless v2 needs its capacity range on the cluster: RDS refuses a
/// `db.serverless` instance in a cluster without
/// ServerlessV2ScalingConfiguration (Aurora User Guide, "Requirements and
/// limitations for Aurora Serverless v2"; RDS API Reference,
/// ServerlessV2ScalingConfiguration: MinCapacity 0 to 256, MaxCapacity 1 to
/// 256, in steps of 0.5:
/// <https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ServerlessV2ScalingConfiguration.html>).
fn read_serverless(r: &mut Reader<'_>, instance_class: Option<&str>) -> Option<ServerlessCapacity> {
    use keys::{SERVERLESS_MAX_CAPACITY, SERVERLESS_MIN_CAPACITY};
    let given =
        r.origin.raw(SERVERLESS_MIN_CAPACITY).is_some() || r.origin.raw(SERVERLESS_MAX_CAPACITY).is_some();
    let serverless = instance_class == Some("db.serverless");
    if !serverless && !given {
        return None;
    }
    let min = read_capacity(r, SERVERLESS_MIN_CAPACITY, 0.0);
    let max = read_capacity(r, SERVERLESS_MAX_CAPACITY, 1.0);
    for (key, value) in [(SERVERLESS_MIN_CAPACITY, min), (SERVERLESS_MAX_CAPACITY, max)] {
        if value.is_none() && r.origin.raw(key).is_none() {
            r.problem(
                key,
                if serverless {
                    "is required with instance_class db.serverless: RDS needs the cluster's Serverless v2 capacity range"
                } else {
                    "is required when the other serverless capacity setting is set"
                },
            );
        }
    }
    let (min_half_acus, max_half_acus) = (min?, max?);
    if min_half_acus > max_half_acus {
        r.problem(SERVERLESS_MIN_CAPACITY, "must not be above serverless_max_capacity");
        return None;
    }
    Some(ServerlessCapacity { min_half_acus, max_half_acus })
}

/// The target key encrypts the DR cluster (and the own copy), so it is a key
/// of the target account in the target region.
fn check_target_kms_key(r: &mut Reader<'_>, arn: &Arn, region: Option<&Region>, account: Option<&AccountId>) {
    let key = keys::TARGET_KMS_KEY_ARN;
    if let Err(e) = arn.expect_kind("kms", "key/") {
        r.problem(key, format!("{e}; aliases are not accepted, give the key's ARN"));
    } else if let Some(region) = region
        && arn.region().as_ref() != Some(region)
    {
        r.problem(
            key,
            format!(
                "key is in region {} but the DR cluster is restored in the target region {region}",
                arn.region().map(|r| r.to_string()).unwrap_or_else(|| "(none)".into())
            ),
        );
    } else if let Some(account) = account
        && arn.account().as_ref() != Some(account)
    {
        r.problem(
            key,
            format!("key must belong to the target account {account}: a key of the source account is what this setting removes the dependency on"),
        );
    }
}

/// The target key: required in a function's environment (the template
/// always sets it, to the key its stack creates or the one given), optional
/// in a TOML file (the drill creates one, a deployment's stack too).
fn read_target_kms_key(
    r: &mut Reader<'_>,
    region: Option<&Region>,
    account: Option<&AccountId>,
) -> Option<Arn> {
    let key = keys::TARGET_KMS_KEY_ARN;
    let arn = match r.origin {
        Origin::Env(_) if r.origin.raw(key).is_none() => {
            r.problem(
                key,
                "is required: the DR cluster is restored under this key of the target account, so it never \
                 depends on the source account's key (template parameter TargetKMSKeyArn, or the key the \
                 stack creates when it is empty)",
            );
            None
        }
        _ => r.optional::<Arn>(key),
    }?;
    check_target_kms_key(r, &arn, region, account);
    Some(arn)
}

impl TargetSettings {
    /// Reads the target settings (collecting problems into `r`).
    pub fn read(r: &mut Reader<'_>) -> Option<Self> {
        use keys::*;
        let account_id = r.required::<AccountId>(TARGET_ACCOUNT_ID);
        let region = r.required::<Region>(TARGET_REGION);
        let source_account_id = r.required::<AccountId>(SOURCE_ACCOUNT_ID);
        let engine = r.text(ENGINE);
        if let Some(e) = &engine
            && !matches!(e.as_str(), "aurora-postgresql" | "aurora-mysql")
        {
            r.problem(ENGINE, format!("must be aurora-postgresql or aurora-mysql (got {e:?})"));
        }
        let instance_class = r.text(INSTANCE_CLASS);
        if let Some(c) = &instance_class
            && !(c.starts_with("db.") && c.split('.').count() == 3 || c == "db.serverless")
        {
            r.problem(INSTANCE_CLASS, format!("must be an instance class such as db.r6g.large (got {c:?})"));
        }
        let serverless = read_serverless(r, instance_class.as_deref());
        let instance_count = r.number(INSTANCE_COUNT, 1, 1..=16);
        let final_snapshot = r.flag(FINAL_SNAPSHOT, false);
        let pairs = read_pairs(r, instance_count, final_snapshot);
        let source_topic_arn = r.optional::<Arn>(SOURCE_TOPIC_ARN);
        if let Some(arn) = &source_topic_arn {
            if let Err(e) = arn.expect_kind("sns", "") {
                r.problem(SOURCE_TOPIC_ARN, e.to_string());
            } else if let Some(src) = &source_account_id
                && arn.account().as_ref() != Some(src)
            {
                r.problem(SOURCE_TOPIC_ARN, format!("topic must belong to the source account {src}"));
            }
        }
        let state_machine_arn = r.optional::<Arn>(STATE_MACHINE_ARN);
        if let Some(arn) = &state_machine_arn
            && let Err(e) = arn.expect_kind("states", "stateMachine:")
        {
            r.problem(STATE_MACHINE_ARN, e.to_string());
        }
        let failure_topic_arn = r.optional::<Arn>(TARGET_FAILURE_TOPIC_ARN);
        let db_subnet_group = r.optional_text(DB_SUBNET_GROUP);
        let vpc_security_group_ids = r.list(VPC_SECURITY_GROUP_IDS);
        for sg in &vpc_security_group_ids {
            if !(sg.starts_with("sg-") && sg.len() > 3 && sg[3..].bytes().all(|b| b.is_ascii_hexdigit())) {
                r.problem(VPC_SECURITY_GROUP_IDS, format!("{sg:?} is not a security group id (sg-…)"));
            }
        }
        let db_cluster_parameter_group = r.optional_text(DB_CLUSTER_PARAMETER_GROUP);
        let deletion_protection = r.flag(DELETION_PROTECTION, false);
        let keep_failed_temp_cluster = r.flag(KEEP_FAILED_TEMP_CLUSTER, false);
        let adopt_existing = r.flag(ADOPT_EXISTING, false);
        let retention = Retention::read(r, TARGET_RETAIN_SNAPSHOTS, TARGET_RETAIN_DAYS);
        let kms_key_arn = read_target_kms_key(r, region.as_ref(), account_id.as_ref());
        let own_copy = r.flag(TARGET_OWN_COPY, false);
        let wait_tokens_table = r.optional_text(WAIT_TOKENS_TABLE);
        if let Some(t) = &wait_tokens_table
            && !crate::wait_tokens::valid_table_name(t)
        {
            r.problem(
                WAIT_TOKENS_TABLE,
                format!("{t:?} is not a DynamoDB table name (3-255 of a-z, A-Z, 0-9, '_', '-', '.')"),
            );
        }
        let sanity = Box::new(SanitySettings::read(r, region.as_ref(), account_id.as_ref()));
        // The single-cluster fields are the first pair's (see `for_source`).
        let pairs = pairs?;
        let first = pairs.first()?.clone();
        Some(Self {
            account_id: account_id?,
            region: region?,
            source_account_id: source_account_id?,
            engine: engine?,
            instance_class: instance_class?,
            serverless,
            instance_count,
            existing_cluster_id: first.existing_cluster_id,
            temp_cluster_id: first.temp_cluster_id,
            existing_instance_id: first.existing_instance_id,
            temp_instance_id: first.temp_instance_id,
            pairs,
            source_topic_arn,
            state_machine_arn,
            failure_topic_arn,
            db_subnet_group,
            vpc_security_group_ids,
            db_cluster_parameter_group,
            deletion_protection,
            final_snapshot,
            keep_failed_temp_cluster,
            adopt_existing,
            retention,
            kms_key_arn,
            own_copy,
            wait_tokens_table,
            sanity,
        })
    }

    /// The id of the `n`-th instance (1-based) under a base id: the base
    /// itself for the first (the writer), `{base}-{n}` for the others.
    pub fn nth_instance(base: &InstanceId, n: u32) -> InstanceId {
        if n <= 1 {
            return base.clone();
        }
        crate::ids::fit_rds_id(base.as_str(), &format!("-{n}")).parse().unwrap_or_else(|_| base.clone())
    }

    /// Temporary instance ids, in order (writer first).
    pub fn temp_instance_ids(&self) -> Vec<InstanceId> {
        (1..=self.instance_count).map(|n| Self::nth_instance(&self.temp_instance_id, n)).collect()
    }

    /// Existing instance ids, in order (writer first).
    pub fn existing_instance_ids(&self) -> Vec<InstanceId> {
        (1..=self.instance_count).map(|n| Self::nth_instance(&self.existing_instance_id, n)).collect()
    }
}

/// One source cluster and the target names it is restored under. Many
/// clusters are `[[pairs]]` tables in TOML, or `CLUSTER_PAIRS` in the
/// environment: `source=existing:temp:existing-instance:temp-instance`
/// entries separated by `;` (RDS identifiers never contain `=`, `:` or `;`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterPair {
    /// `None` only for the single-cluster keys when the source cluster is not
    /// named on this side: that one pair then serves any source cluster.
    pub source_cluster_id: Option<ClusterId>,
    pub existing_cluster_id: ClusterId,
    pub temp_cluster_id: ClusterId,
    pub existing_instance_id: InstanceId,
    pub temp_instance_id: InstanceId,
}

/// What a restore test appends to the pair's temporary cluster and instance
/// ids for its own: `{temp}-test`, `{temp_instance}-test[-n]`. A normal run
/// never uses these names, and settings refuse a pair whose test names
/// would exceed 63 characters or equal a name in use.
pub const RESTORE_TEST_SUFFIX: &str = "-test";

impl ClusterPair {
    /// The restore test's cluster: `{temp_cluster_id}-test`.
    pub fn restore_test_cluster_id(&self) -> crate::DrResult<ClusterId> {
        restore_test_name(self.temp_cluster_id.as_str())
    }

    /// The restore test's writer instance: `{temp_instance_id}-test`.
    pub fn restore_test_instance_id(&self) -> crate::DrResult<InstanceId> {
        restore_test_name(self.temp_instance_id.as_str())
    }
}

/// `{base}-test`. Settings refuse a base too long for it, so this fails
/// only on settings built around that check.
fn restore_test_name<T: std::str::FromStr<Err = crate::ids::InvalidValue>>(base: &str) -> crate::DrResult<T> {
    format!("{base}{RESTORE_TEST_SUFFIX}")
        .parse()
        .map_err(|e| crate::DrError::invalid_input(format!("restore test name for {base}: {e}")))
}

/// The fields of a pair: `[[pairs]]` keys, and the order of a `CLUSTER_PAIRS` entry.
pub const PAIR_FIELDS: [&str; 5] = [
    "source_cluster_id",
    "existing_cluster_id",
    "temp_cluster_id",
    "existing_instance_id",
    "temp_instance_id",
];

impl Reader<'_> {
    pub(super) fn problem_named(&mut self, name: String, problem: impl Into<String>) {
        self.errors.push(SettingError { name, problem: problem.into() });
    }

    /// The raw entries of `CLUSTER_PAIRS` / `[[pairs]]`: (name, field -> value).
    /// The TOML reader flattens `[[pairs]]` to `pairs[i].field` keys.
    pub(super) fn pair_entries(&mut self, key: Key) -> Vec<(String, BTreeMap<String, String>)> {
        let base = self.origin.name(key);
        match self.origin {
            Origin::Toml(_) => self.origin.table_entries(base),
            Origin::Env(_) => {
                let Some(raw) = self.origin.raw(key).map(str::to_owned) else { return Vec::new() };
                let mut out = Vec::new();
                for (i, entry) in raw.split(';').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
                    let parts =
                        entry.split_once('=').map(|(s, rest)| (s, rest.split(':').collect::<Vec<_>>()));
                    match parts {
                        Some((source, targets)) if targets.len() == 4 => {
                            let values = std::iter::once(source).chain(targets);
                            let fields = PAIR_FIELDS
                                .iter()
                                .zip(values)
                                .map(|(f, v)| ((*f).to_owned(), v.trim().to_owned()))
                                .collect();
                            out.push((format!("{base}[{i}]"), fields));
                        }
                        _ => self.problem(
                            key,
                            format!(
                                "entry {i} {entry:?} must be source=existing-cluster:temp-cluster:existing-instance:temp-instance"
                            ),
                        ),
                    }
                }
                out
            }
        }
    }
}

/// A pair and the setting name of each of its fields (for error messages).
struct NamedPair {
    pair: ClusterPair,
    names: [String; 5],
}

/// The single-cluster keys (one implicit pair) and every `CLUSTER_PAIRS`
/// entry, each checked with the identifier rules, and all checked together:
/// one pair per source cluster, and no target cluster or instance id used
/// twice (two pairs must never restore over the same names).
fn read_pairs(r: &mut Reader<'_>, instance_count: u32, final_snapshot: bool) -> Option<Vec<ClusterPair>> {
    use keys::*;
    let single_keys =
        [SOURCE_CLUSTER_ID, EXISTING_CLUSTER_ID, TEMP_CLUSTER_ID, EXISTING_INSTANCE_ID, TEMP_INSTANCE_ID];
    let entries = r.pair_entries(CLUSTER_PAIRS);
    let listed = !entries.is_empty() || r.origin.raw(CLUSTER_PAIRS).is_some();
    let single_given = single_keys[1..].iter().any(|k| r.origin.raw(*k).is_some());
    let mut pairs: Vec<NamedPair> = Vec::new();
    let mut complete = true;

    if single_given || !listed {
        let existing_cluster_id = r.required::<ClusterId>(EXISTING_CLUSTER_ID);
        let temp_cluster_id = r.required::<ClusterId>(TEMP_CLUSTER_ID);
        let existing_instance_id = r.required::<InstanceId>(EXISTING_INSTANCE_ID);
        let temp_instance_id = r.required::<InstanceId>(TEMP_INSTANCE_ID);
        let source_given = r.origin.raw(SOURCE_CLUSTER_ID).is_some();
        let source_cluster_id = r.optional::<ClusterId>(SOURCE_CLUSTER_ID);
        if listed && !source_given {
            r.problem(
                SOURCE_CLUSTER_ID,
                "is required when CLUSTER_PAIRS is set as well as the single-cluster keys: it names the \
                 source cluster that EXISTING_CLUSTER_ID restores",
            );
        }
        let names = single_keys.map(|k| r.origin.name(k).to_owned());
        match (existing_cluster_id, temp_cluster_id, existing_instance_id, temp_instance_id) {
            (
                Some(existing_cluster_id),
                Some(temp_cluster_id),
                Some(existing_instance_id),
                Some(temp_instance_id),
            ) if !(source_given && source_cluster_id.is_none()) => {
                let pair = ClusterPair {
                    source_cluster_id,
                    existing_cluster_id,
                    temp_cluster_id,
                    existing_instance_id,
                    temp_instance_id,
                };
                check_pair(r, &pair, &names);
                check_generated_lengths(r, &pair, &names, instance_count, final_snapshot);
                pairs.push(NamedPair { pair, names });
            }
            _ => complete = false,
        }
    }

    for (prefix, fields) in entries {
        let names = PAIR_FIELDS.map(|f| format!("{prefix}.{f}"));
        let mut values: Vec<Option<&str>> = Vec::new();
        for (field, name) in PAIR_FIELDS.iter().zip(&names) {
            let value = fields.get(*field).map(String::as_str).filter(|v| !v.is_empty());
            if value.is_none() {
                r.problem_named(name.clone(), "is required but not set");
            }
            values.push(value);
        }
        let parse_cluster = |r: &mut Reader<'_>, i: usize| {
            let parsed = values[i].map(str::parse::<ClusterId>);
            match parsed {
                Some(Ok(id)) => Some(id),
                Some(Err(e)) => {
                    r.problem_named(names[i].clone(), e.to_string());
                    None
                }
                None => None,
            }
        };
        let source = parse_cluster(r, 0);
        let existing = parse_cluster(r, 1);
        let temp = parse_cluster(r, 2);
        let parse_instance = |r: &mut Reader<'_>, i: usize| match values[i].map(str::parse::<InstanceId>) {
            Some(Ok(id)) => Some(id),
            Some(Err(e)) => {
                r.problem_named(names[i].clone(), e.to_string());
                None
            }
            None => None,
        };
        let existing_instance = parse_instance(r, 3);
        let temp_instance = parse_instance(r, 4);
        match (source, existing, temp, existing_instance, temp_instance) {
            (Some(source), Some(existing), Some(temp), Some(existing_instance), Some(temp_instance)) => {
                let pair = ClusterPair {
                    source_cluster_id: Some(source),
                    existing_cluster_id: existing,
                    temp_cluster_id: temp,
                    existing_instance_id: existing_instance,
                    temp_instance_id: temp_instance,
                };
                check_pair(r, &pair, &names);
                check_generated_lengths(r, &pair, &names, instance_count, final_snapshot);
                pairs.push(NamedPair { pair, names });
            }
            _ => complete = false,
        }
    }
    check_distinct(r, &pairs, instance_count);
    complete.then(|| pairs.into_iter().map(|p| p.pair).collect())
}

/// Within one pair: the temporary names differ from the existing ones.
fn check_pair(r: &mut Reader<'_>, pair: &ClusterPair, names: &[String; 5]) {
    if pair.existing_cluster_id.as_str().eq_ignore_ascii_case(pair.temp_cluster_id.as_str()) {
        r.problem_named(names[2].clone(), "must differ from the existing cluster id");
    }
    if pair.existing_instance_id.as_str().eq_ignore_ascii_case(pair.temp_instance_id.as_str()) {
        r.problem_named(names[4].clone(), "must differ from the existing instance id");
    }
}

/// Characters a run's stamp adds to a renamed-away name: `-old-` and
/// `yyyymmddHHMMss`.
const OLD_SUFFIX_LEN: usize = "-old-".len() + 14;

/// Characters `-final` adds to the final snapshot of a renamed-away cluster.
const FINAL_SUFFIX_LEN: usize = "-final".len();

/// Every identifier a run generates from a pair must fit RDS's 63
/// characters (RDS API Reference: RestoreDBClusterFromSnapshot and
/// ModifyDBCluster `NewDBClusterIdentifier`, CreateDBInstance and
/// ModifyDBInstance `NewDBInstanceIdentifier`, DeleteDBCluster
/// `FinalDBSnapshotIdentifier`: "1 to 63 letters, numbers, or hyphens").
/// Each name is checked at its full length, so a setting that would make
/// one too long is refused at load with the key to shorten, rather than a
/// name cut to fit on a run.
fn check_generated_lengths(
    r: &mut Reader<'_>,
    pair: &ClusterPair,
    names: &[String; 5],
    instance_count: u32,
    final_snapshot: bool,
) {
    let max = crate::ids::MAX_RDS_ID;
    let existing = pair.existing_cluster_id.as_str().len();
    let too_long = |r: &mut Reader<'_>, name: &str, what: String, len: usize| {
        if len > max {
            r.problem_named(
                name.to_owned(),
                format!("makes {what} {len} characters long; RDS allows at most {max}: shorten it"),
            );
        }
    };
    too_long(
        r,
        &names[1],
        "the renamed-away cluster id {existing}-old-{yyyymmddHHMMss}".into(),
        existing + OLD_SUFFIX_LEN,
    );
    if final_snapshot {
        let what =
            "the final snapshot id {existing}-old-{yyyymmddHHMMss}-final (final_snapshot is on)".into();
        too_long(r, &names[1], what, existing + OLD_SUFFIX_LEN + FINAL_SUFFIX_LEN);
    }
    // The longest numbered instance id: `{base}-{n}` for the last n.
    let numbered =
        |base: usize| if instance_count > 1 { base + 1 + instance_count.to_string().len() } else { base };
    let existing_instance = numbered(pair.existing_instance_id.as_str().len());
    let temp_instance = numbered(pair.temp_instance_id.as_str().len());
    if instance_count > 1 {
        let what = format!("the instance ids {{temp_instance}}-2 .. -{instance_count}");
        too_long(r, &names[4], what, temp_instance);
        let what = format!("the instance ids {{existing_instance}}-2 .. -{instance_count}");
        too_long(r, &names[3], what, existing_instance);
    }
    let what = "the renamed-away instance id {existing_instance}[-n]-old-{yyyymmddHHMMss}".into();
    too_long(r, &names[3], what, existing_instance + OLD_SUFFIX_LEN);
    let test = RESTORE_TEST_SUFFIX.len();
    let what = format!("the restore test's cluster id {{temp}}{RESTORE_TEST_SUFFIX}");
    too_long(r, &names[2], what, pair.temp_cluster_id.as_str().len() + test);
    let what = format!("the restore test's instance id {{temp_instance}}{RESTORE_TEST_SUFFIX}[-n]");
    too_long(r, &names[4], what, temp_instance + test);
}

/// Across pairs: one pair per source cluster; every cluster id and every
/// instance id (with the numbered ids `DB_INSTANCE_COUNT` adds) used once,
/// and no restore test name equal to any of them (its own pair's included:
/// a restore test must never restore over a name a real run uses).
fn check_distinct(r: &mut Reader<'_>, pairs: &[NamedPair], instance_count: u32) {
    let mut sources: BTreeMap<String, String> = BTreeMap::new();
    let mut clusters: BTreeMap<String, (usize, String)> = BTreeMap::new();
    let mut instances: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for (i, NamedPair { pair, names }) in pairs.iter().enumerate() {
        if let Some(source) = &pair.source_cluster_id {
            let key = source.as_str().to_ascii_lowercase();
            match sources.get(&key) {
                Some(first) => r.problem_named(
                    names[0].clone(),
                    format!("source cluster {source} already has a pair ({first})"),
                ),
                None => {
                    sources.insert(key, names[0].clone());
                }
            }
        }
        claim(r, &mut clusters, i, pair.existing_cluster_id.as_str(), &names[1]);
        claim(r, &mut clusters, i, pair.temp_cluster_id.as_str(), &names[2]);
        for n in 1..=instance_count.max(1) {
            let existing = TargetSettings::nth_instance(&pair.existing_instance_id, n);
            let temp = TargetSettings::nth_instance(&pair.temp_instance_id, n);
            claim(r, &mut instances, i, existing.as_str(), &names[3]);
            claim(r, &mut instances, i, temp.as_str(), &names[4]);
        }
    }
    for NamedPair { pair, names } in pairs {
        let Ok(test) = pair.restore_test_cluster_id() else { continue };
        if let Some((_, first)) = clusters.get(&test.as_str().to_ascii_lowercase()) {
            r.problem_named(
                names[2].clone(),
                format!("makes the restore test's cluster id {test}, which {first} already uses"),
            );
        }
        let Ok(test_instance) = pair.restore_test_instance_id() else { continue };
        for n in 1..=instance_count.max(1) {
            let test = TargetSettings::nth_instance(&test_instance, n);
            if let Some((_, first)) = instances.get(&test.as_str().to_ascii_lowercase()) {
                r.problem_named(
                    names[4].clone(),
                    format!("makes the restore test's instance id {test}, which {first} already uses"),
                );
            }
        }
    }
}

/// Records that pair `owner` uses `id`; a problem when another pair does.
fn claim(
    r: &mut Reader<'_>,
    used: &mut BTreeMap<String, (usize, String)>,
    owner: usize,
    id: &str,
    name: &str,
) {
    match used.get(&id.to_ascii_lowercase()) {
        Some((first_owner, first)) if *first_owner != owner => r.problem_named(
            name.to_owned(),
            format!("{id} is already used by {first}: two pairs must never restore over the same names"),
        ),
        Some(_) => {}
        None => {
            used.insert(id.to_ascii_lowercase(), (owner, name.to_owned()));
        }
    }
}

impl TargetSettings {
    /// The pair that restores `source` (the payload's `sourceClusterId`): the
    /// one naming it, else the single-cluster pair that serves any source.
    /// Without a source cluster, the only pair. `InvalidInput` otherwise.
    pub fn pair_for(&self, source: Option<&str>) -> crate::DrResult<&ClusterPair> {
        let found = match source {
            Some(s) => self
                .pairs
                .iter()
                .find(|p| p.source_cluster_id.as_ref().is_some_and(|c| c.as_str().eq_ignore_ascii_case(s)))
                .or_else(|| self.pairs.iter().find(|p| p.source_cluster_id.is_none())),
            None if self.pairs.len() == 1 => self.pairs.first(),
            None => None,
        };
        found.ok_or_else(|| {
            let sources: Vec<&str> = self
                .pairs
                .iter()
                .filter_map(|p| p.source_cluster_id.as_ref().map(ClusterId::as_str))
                .collect();
            crate::DrError::invalid_input(match source {
                Some(s) => format!(
                    "no cluster pair restores source cluster {s} (configured: {}; see {})",
                    sources.join(", "),
                    keys::CLUSTER_PAIRS.env
                ),
                None => format!(
                    "payload names no sourceClusterId, and {} cluster pairs are configured",
                    self.pairs.len()
                ),
            })
        })
    }

    /// These settings for a run: [`Self::for_source`] of its source cluster,
    /// and for a restore test ([`crate::payload::RunState::is_restore_test`]) the temporary
    /// names replaced by the test's own ([`ClusterPair::restore_test_cluster_id`]),
    /// so every step that restores, waits for, probes or removes "the
    /// temporary cluster" acts on the test cluster and never on a name a
    /// normal run uses.
    pub fn for_run(&self, source: Option<&str>, restore_test: bool) -> crate::DrResult<Self> {
        let mut settings = self.for_source(source)?;
        if restore_test {
            let pair = self.pair_for(source)?;
            settings.temp_cluster_id = pair.restore_test_cluster_id()?;
            settings.temp_instance_id = pair.restore_test_instance_id()?;
        }
        Ok(settings)
    }

    /// These settings for one source cluster: the single-cluster fields
    /// (`existing_cluster_id`, ...) become those of [`Self::pair_for`]`(source)`.
    pub fn for_source(&self, source: Option<&str>) -> crate::DrResult<Self> {
        let pair = self.pair_for(source)?.clone();
        let mut settings = self.clone();
        settings.existing_cluster_id = pair.existing_cluster_id;
        settings.temp_cluster_id = pair.temp_cluster_id;
        settings.existing_instance_id = pair.existing_instance_id;
        settings.temp_instance_id = pair.temp_instance_id;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::tests::{TARGET_ENV, TARGET_TOML, env, target_settings, with};

    #[test]
    fn each_bad_target_setting_is_named_with_its_rule() {
        let long64: &'static str = Box::leak(format!("a{}", "b".repeat(63)).into_boxed_str());
        let cases: &[(&str, Option<&str>, &str)] = &[
            ("TARGET_ACCOUNT_ID", Some("abc"), "12 digits"),
            ("ENGINE", Some("mysql"), "aurora-postgresql or aurora-mysql"),
            ("ENGINE", None, "required"),
            ("DB_INSTANCE_CLASS", Some("r6g.large"), "instance class"),
            ("DB_INSTANCE_COUNT", Some("0"), "whole number"),
            ("DB_INSTANCE_COUNT", Some("x"), "whole number"),
            ("EXISTING_CLUSTER_ID", Some(""), "required"),
            ("EXISTING_CLUSTER_ID", Some(long64), "at most 63"),
            ("TEMP_CLUSTER_ID", Some("orders-dr"), "must differ"),
            ("TEMP_CLUSTER_ID", Some("orders-dr"), "must differ"),
            ("TEMP_CLUSTER_ID", Some("ORDERS-DR"), "must be lowercase"),
            ("EXISTING_INSTANCE_ID", Some("9x"), "start with a letter"),
            ("TEMP_INSTANCE_ID", Some("orders-dr-1"), "must differ"),
            ("SOURCE_TOPIC_ARN", Some("arn:aws:sns:us-west-2:333333333333:t"), "source account"),
            ("SOURCE_TOPIC_ARN", Some("not-an-arn"), "ARN"),
            ("STATE_MACHINE_ARN", Some("arn:aws:lambda:us-west-1:222222222222:function:x"), "states"),
            ("VPC_SECURITY_GROUP_IDS", Some("sg-123,web"), "security group"),
            ("DELETION_PROTECTION", Some("on"), "true or false"),
        ];
        for (key, value, rule) in cases {
            let origin = with(TARGET_ENV, key, *value);
            let mut r = Reader::new(&origin);
            let _ = TargetSettings::read(&mut r);
            let errors = r.finish().expect_err(key).0;
            assert!(
                errors.iter().any(|e| e.name == *key && e.problem.contains(rule)),
                "{key}={value:?}: want {rule:?} in {errors:?}"
            );
        }
    }

    #[test]
    fn instance_ids_number_from_the_base() {
        let mut t = target_settings();
        t.instance_count = 3;
        let ids: Vec<String> = t.existing_instance_ids().iter().map(ToString::to_string).collect();
        assert_eq!(ids, ["orders-dr-1", "orders-dr-1-2", "orders-dr-1-3"]);
        let long: InstanceId = format!("a{}", "b".repeat(62)).parse().expect("63");
        let second = TargetSettings::nth_instance(&long, 2);
        assert_eq!(second.as_str().len(), 63);
        assert!(second.as_str().ends_with("-2"));
    }

    /// TARGET_ENV without the single-cluster keys, plus `extra`.
    fn fleet_target_env(extra: &[(&'static str, &'static str)]) -> Origin {
        let single = ["EXISTING_CLUSTER_ID", "TEMP_CLUSTER_ID", "EXISTING_INSTANCE_ID", "TEMP_INSTANCE_ID"];
        let mut pairs: Vec<(&str, &str)> =
            TARGET_ENV.iter().filter(|(k, _)| !single.contains(k)).copied().collect();
        pairs.extend_from_slice(extra);
        env(&pairs)
    }

    const TWO_PAIRS: &str = "orders=orders-dr:orders-dr-next:orders-dr-1:orders-dr-next-1; \
                             billing=billing-dr:billing-dr-next:billing-dr-1:billing-dr-next-1";

    fn read_target(origin: &Origin) -> Result<TargetSettings, Vec<SettingError>> {
        let mut r = Reader::new(origin);
        let t = TargetSettings::read(&mut r);
        r.finish().map_err(|e| e.0)?;
        Ok(t.expect("settings"))
    }

    #[test]
    fn cluster_pairs_from_the_environment_and_from_toml() {
        let t = read_target(&fleet_target_env(&[("CLUSTER_PAIRS", TWO_PAIRS)])).expect("valid");
        assert_eq!(t.pairs.len(), 2);
        assert_eq!(t.existing_cluster_id.as_str(), "orders-dr", "the first pair fills the single fields");
        let billing = t.for_source(Some("billing")).expect("pair");
        assert_eq!(
            (billing.existing_cluster_id.as_str(), billing.temp_cluster_id.as_str()),
            ("billing-dr", "billing-dr-next")
        );
        assert_eq!(billing.existing_instance_ids()[0].as_str(), "billing-dr-1");
        assert_eq!(billing.temp_instance_ids()[0].as_str(), "billing-dr-next-1");
        let err = t.pair_for(Some("payroll")).expect_err("no pair");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert!(err.to_string().contains("payroll") && err.to_string().contains("orders, billing"), "{err}");
        assert!(t.pair_for(None).is_err(), "two pairs: the payload must name its cluster");

        // The single-cluster form serves any source cluster, as before.
        let single = target_settings();
        assert_eq!(single.pairs.len(), 1);
        assert_eq!(single.pair_for(Some("anything")).expect("any").existing_cluster_id.as_str(), "orders-dr");
        assert_eq!(single.pair_for(None).expect("the one").existing_cluster_id.as_str(), "orders-dr");

        // TOML: `[[pairs]]` flattened to `pairs[i].field`, next to the single keys.
        let mut map: BTreeMap<String, String> = TARGET_TOML
            .iter()
            .chain(&[("source.cluster_id", "orders")])
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        for (k, v) in [
            ("source_cluster_id", "billing"),
            ("existing_cluster_id", "billing-dr"),
            ("temp_cluster_id", "billing-dr-next"),
            ("existing_instance_id", "billing-dr-1"),
            ("temp_instance_id", "billing-dr-next-1"),
        ] {
            map.insert(format!("pairs[0].{k}"), v.into());
        }
        let t = read_target(&Origin::Toml(map)).expect("valid toml");
        let sources: Vec<Option<&str>> =
            t.pairs.iter().map(|p| p.source_cluster_id.as_ref().map(ClusterId::as_str)).collect();
        assert_eq!(sources, [Some("orders"), Some("billing")]);
    }

    #[test]
    fn bad_cluster_pairs_are_named_with_their_rule() {
        // (extra variables, error name, rule)
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case] = &[
            (&[("CLUSTER_PAIRS", "orders=orders-dr:orders-dr-next:orders-dr-1")], "CLUSTER_PAIRS", "entry 0"),
            (&[("CLUSTER_PAIRS", "orders:orders-dr:orders-dr-next:a:b")], "CLUSTER_PAIRS", "source=existing"),
            (
                &[("CLUSTER_PAIRS", "orders=orders--dr:t:e:ti")],
                "CLUSTER_PAIRS[0].existing_cluster_id",
                "consecutive",
            ),
            (
                &[("CLUSTER_PAIRS", "1orders=dr:t:e:ti")],
                "CLUSTER_PAIRS[0].source_cluster_id",
                "start with a letter",
            ),
            (&[("CLUSTER_PAIRS", "orders=dr:t::ti")], "CLUSTER_PAIRS[0].existing_instance_id", "required"),
            (&[("CLUSTER_PAIRS", "orders=dr:dr:e:ti")], "CLUSTER_PAIRS[0].temp_cluster_id", "must differ"),
            (
                &[("CLUSTER_PAIRS", "orders=dr:DR:e:ti")],
                "CLUSTER_PAIRS[0].temp_cluster_id",
                "must be lowercase",
            ),
            (&[("CLUSTER_PAIRS", "orders=dr:t:e:e")], "CLUSTER_PAIRS[0].temp_instance_id", "must differ"),
            (
                &[("CLUSTER_PAIRS", "orders=dr:t:e:ti;orders=dr2:t2:e2:ti2")],
                "CLUSTER_PAIRS[1].source_cluster_id",
                "already has a pair",
            ),
            (
                &[("CLUSTER_PAIRS", "orders=dr:t:e:ti;billing=t:t2:e2:ti2")],
                "CLUSTER_PAIRS[1].existing_cluster_id",
                "already used by CLUSTER_PAIRS[0].temp_cluster_id",
            ),
            (
                &[("CLUSTER_PAIRS", "orders=dr:t:e:ti;billing=dr2:t2:e2:e")],
                "CLUSTER_PAIRS[1].temp_instance_id",
                "already used",
            ),
            (
                &[
                    ("CLUSTER_PAIRS", "billing=b:bt:be:bti"),
                    ("EXISTING_CLUSTER_ID", "orders-dr"),
                    ("TEMP_CLUSTER_ID", "orders-dr-next"),
                    ("EXISTING_INSTANCE_ID", "orders-dr-1"),
                    ("TEMP_INSTANCE_ID", "orders-dr-next-1"),
                ],
                "SOURCE_CLUSTER_ID",
                "required when CLUSTER_PAIRS",
            ),
            (&[], "EXISTING_CLUSTER_ID", "required"),
        ];
        for (extra, name, rule) in cases {
            let errors = read_target(&fleet_target_env(extra)).expect_err(name);
            assert!(
                errors.iter().any(|e| e.name == *name && e.problem.contains(rule)),
                "{extra:?}: want {name}: {rule:?} in {errors:?}"
            );
        }
        // Numbered instances count: a second instance of one pair is another's first.
        let origin = fleet_target_env(&[
            ("CLUSTER_PAIRS", "orders=dr:t:e:ti;billing=dr2:t2:e-2:ti2"),
            ("DB_INSTANCE_COUNT", "2"),
        ]);
        let errors = read_target(&origin).expect_err("numbered collision");
        assert!(errors.iter().any(|e| e.name == "CLUSTER_PAIRS[1].existing_instance_id"), "{errors:?}");
    }
}
