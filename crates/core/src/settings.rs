//! Static settings of both sides, read once at start and validated.
//!
//! The same settings come from two places: Lambda environment variables
//! (set by `template.yaml` from stack parameters) and the CLI's TOML file.
//! Each setting is declared once in [`SOURCE_KEYS`]/[`TARGET_KEYS`] with its
//! variable name and its TOML key, so both readers apply the same rules and
//! every error names the variable (or key) and the rule it broke. Readers
//! collect every problem before failing.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::ids::{AccountId, Arn, ClusterId, InstanceId, InvalidValue, Region};

/// One setting's two names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub env: &'static str,
    pub toml: &'static str,
}

const fn key(env: &'static str, toml: &'static str) -> Key {
    Key { env, toml }
}

pub mod keys {
    use super::{Key, key};
    pub const SOURCE_ACCOUNT_ID: Key = key("SOURCE_ACCOUNT_ID", "source.account_id");
    pub const SOURCE_REGION: Key = key("SOURCE_REGION", "source.region");
    pub const SOURCE_CLUSTER_ID: Key = key("SOURCE_CLUSTER_ID", "source.cluster_id");
    /// Many clusters: a comma list (env) or a list of strings (TOML).
    pub const SOURCE_CLUSTER_IDS: Key = key("SOURCE_CLUSTER_IDS", "source.cluster_ids");
    pub const SNAPSHOT_PREFIX: Key = key("SNAPSHOT_PREFIX", "source.snapshot_prefix");
    pub const KMS_KEY_ARN: Key = key("KMS_KEY_ARN", "source.kms_key_arn");
    pub const ALLOW_UNENCRYPTED_SOURCE: Key =
        key("ALLOW_UNENCRYPTED_SOURCE", "source.allow_unencrypted_source");
    pub const NOTIFICATION_TOPIC_ARN: Key = key("NOTIFICATION_TOPIC_ARN", "source.notification_topic_arn");
    pub const SOURCE_FAILURE_TOPIC_ARN: Key = key("FAILURE_TOPIC_ARN", "source.failure_topic_arn");
    pub const SOURCE_RETAIN_SNAPSHOTS: Key = key("RETAIN_SNAPSHOTS", "source.retain_snapshots");
    pub const SOURCE_RETAIN_DAYS: Key = key("RETAIN_DAYS", "source.retain_days");

    pub const TARGET_ACCOUNT_ID: Key = key("TARGET_ACCOUNT_ID", "target.account_id");
    pub const TARGET_REGION: Key = key("TARGET_REGION", "target.region");
    pub const ENGINE: Key = key("ENGINE", "target.engine");
    pub const INSTANCE_CLASS: Key = key("DB_INSTANCE_CLASS", "target.instance_class");
    pub const INSTANCE_COUNT: Key = key("DB_INSTANCE_COUNT", "target.instance_count");
    pub const EXISTING_CLUSTER_ID: Key = key("EXISTING_CLUSTER_ID", "target.existing_cluster_id");
    pub const TEMP_CLUSTER_ID: Key = key("TEMP_CLUSTER_ID", "target.temp_cluster_id");
    pub const EXISTING_INSTANCE_ID: Key = key("EXISTING_INSTANCE_ID", "target.existing_instance_id");
    pub const TEMP_INSTANCE_ID: Key = key("TEMP_INSTANCE_ID", "target.temp_instance_id");
    /// Many clusters: `src=existing:temp:existing-instance:temp-instance;...`
    /// (env) or `[[pairs]]` tables (TOML); see [`super::ClusterPair`].
    pub const CLUSTER_PAIRS: Key = key("CLUSTER_PAIRS", "pairs");
    pub const SOURCE_TOPIC_ARN: Key = key("SOURCE_TOPIC_ARN", "target.source_topic_arn");
    pub const STATE_MACHINE_ARN: Key = key("STATE_MACHINE_ARN", "target.state_machine_arn");
    pub const TARGET_FAILURE_TOPIC_ARN: Key = key("FAILURE_TOPIC_ARN", "target.failure_topic_arn");
    pub const DB_SUBNET_GROUP: Key = key("DB_SUBNET_GROUP", "target.db_subnet_group");
    pub const VPC_SECURITY_GROUP_IDS: Key = key("VPC_SECURITY_GROUP_IDS", "target.vpc_security_group_ids");
    pub const DB_CLUSTER_PARAMETER_GROUP: Key =
        key("DB_CLUSTER_PARAMETER_GROUP", "target.db_cluster_parameter_group");
    pub const DELETION_PROTECTION: Key = key("DELETION_PROTECTION", "target.deletion_protection");
    pub const FINAL_SNAPSHOT: Key = key("FINAL_SNAPSHOT", "target.final_snapshot");
    pub const KEEP_FAILED_TEMP_CLUSTER: Key =
        key("KEEP_FAILED_TEMP_CLUSTER", "target.keep_failed_temp_cluster");
    pub const TARGET_RETAIN_SNAPSHOTS: Key = key("RETAIN_SNAPSHOTS", "target.retain_snapshots");
    pub const TARGET_RETAIN_DAYS: Key = key("RETAIN_DAYS", "target.retain_days");
    pub const TARGET_KMS_KEY_ARN: Key = key("TARGET_KMS_KEY_ARN", "target.kms_key_arn");
    // SanityCheck (see [`super::SanitySettings`]).
    pub const SANITY_SECRET_ARN: Key = key("SANITY_SECRET_ARN", "target.sanity_secret_arn");
    pub const SANITY_DATABASE: Key = key("SANITY_DATABASE", "target.sanity_database");
    pub const SANITY_QUERY: Key = key("SANITY_QUERY", "target.sanity_query");
    pub const SANITY_MIN_ROWS: Key = key("SANITY_MIN_ROWS", "target.sanity_min_rows");
    pub const SANITY_FRESHNESS: Key = key("SANITY_FRESHNESS", "target.sanity_freshness");
    pub const SANITY_RPO_SECONDS: Key = key("SANITY_RPO_SECONDS", "target.sanity_rpo_seconds");
    pub const SANITY_ENDPOINT_OVERRIDE: Key =
        key("SANITY_ENDPOINT_OVERRIDE", "target.sanity_endpoint_override");
    pub const SANITY_TLS: Key = key("SANITY_TLS", "target.sanity_tls");
    pub const SANITY_TLS_CA_FILE: Key = key("SANITY_TLS_CA_FILE", "target.sanity_tls_ca_file");
    pub const SANITY_TIMEOUT_SECONDS: Key = key("SANITY_TIMEOUT_SECONDS", "target.sanity_timeout_seconds");
}

/// One rejected setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The variable or key, as the reader names it.
    pub name: String,
    pub problem: String,
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.problem)
    }
}

/// Every problem found while reading settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SettingsError(pub Vec<SettingError>);

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "{}", lines.join("; "))
    }
}

impl From<SettingsError> for crate::error::DrError {
    fn from(err: SettingsError) -> Self {
        let name = err.0.first().map(|e| e.name.clone()).unwrap_or_default();
        crate::error::DrError::InvalidConfig { name, problem: err.to_string() }
    }
}

/// Where values come from: environment variables or a flattened TOML table.
#[derive(Debug, Clone)]
pub enum Origin {
    Env(BTreeMap<String, String>),
    Toml(BTreeMap<String, String>),
}

impl Origin {
    /// A snapshot of the process environment.
    pub fn process_env() -> Self {
        Self::Env(std::env::vars().collect())
    }

    fn name(&self, key: Key) -> &'static str {
        match self {
            Self::Env(_) => key.env,
            Self::Toml(_) => key.toml,
        }
    }

    fn raw(&self, key: Key) -> Option<&str> {
        let (map, name) = match self {
            Self::Env(m) => (m, key.env),
            Self::Toml(m) => (m, key.toml),
        };
        map.get(name).map(String::as_str).filter(|v| !v.trim().is_empty())
    }
}

/// Reads typed values, collecting every problem.
pub struct Reader<'a> {
    origin: &'a Origin,
    errors: Vec<SettingError>,
}

impl<'a> Reader<'a> {
    pub fn new(origin: &'a Origin) -> Self {
        Self { origin, errors: Vec::new() }
    }

    /// Records a problem against a key.
    pub fn problem(&mut self, key: Key, problem: impl Into<String>) {
        self.errors.push(SettingError { name: self.origin.name(key).to_owned(), problem: problem.into() });
    }

    fn parse<T: FromStr<Err = InvalidValue>>(&mut self, key: Key, raw: &str) -> Option<T> {
        match raw.parse::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.problem(key, e.to_string());
                None
            }
        }
    }

    /// A required value.
    pub fn required<T: FromStr<Err = InvalidValue>>(&mut self, key: Key) -> Option<T> {
        match self.origin.raw(key).map(str::to_owned) {
            Some(raw) => self.parse(key, &raw),
            None => {
                self.problem(key, "is required but not set");
                None
            }
        }
    }

    /// An optional value.
    pub fn optional<T: FromStr<Err = InvalidValue>>(&mut self, key: Key) -> Option<T> {
        let raw = self.origin.raw(key)?.to_owned();
        self.parse(key, &raw)
    }

    /// Free text (engine names, instance classes), required and non-empty.
    pub fn text(&mut self, key: Key) -> Option<String> {
        let value = self.origin.raw(key).map(str::to_owned);
        if value.is_none() {
            self.problem(key, "is required but not set");
        }
        value
    }

    /// Optional free text.
    pub fn optional_text(&mut self, key: Key) -> Option<String> {
        self.origin.raw(key).map(str::to_owned)
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`), with a default.
    pub fn flag(&mut self, key: Key, default: bool) -> bool {
        match self.origin.raw(key).map(str::to_ascii_lowercase).as_deref() {
            None => default,
            Some("true" | "1" | "yes") => true,
            Some("false" | "0" | "no") => false,
            Some(other) => {
                self.problem(key, format!("must be true or false (got {other:?})"));
                default
            }
        }
    }

    /// A whole number in `range`, with a default.
    pub fn number(&mut self, key: Key, default: u32, range: std::ops::RangeInclusive<u32>) -> u32 {
        let Some(raw) = self.origin.raw(key).map(str::to_owned) else {
            return default;
        };
        match raw.parse::<u32>() {
            Ok(n) if range.contains(&n) => n,
            _ => {
                self.problem(
                    key,
                    format!("must be a whole number from {} to {} (got {raw:?})", range.start(), range.end()),
                );
                default
            }
        }
    }

    /// An optional whole number in `range`.
    pub fn optional_number(&mut self, key: Key, range: std::ops::RangeInclusive<u32>) -> Option<u32> {
        let raw = self.origin.raw(key)?.to_owned();
        match raw.parse::<u32>() {
            Ok(n) if range.contains(&n) => Some(n),
            _ => {
                self.problem(
                    key,
                    format!("must be a whole number from {} to {} (got {raw:?})", range.start(), range.end()),
                );
                None
            }
        }
    }

    /// A comma-separated list of free-text items.
    pub fn list(&mut self, key: Key) -> Vec<String> {
        self.origin
            .raw(key)
            .map(|raw| raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            .unwrap_or_default()
    }

    /// Ends reading: every problem at once, or nothing.
    pub fn finish(self) -> Result<(), SettingsError> {
        if self.errors.is_empty() { Ok(()) } else { Err(SettingsError(self.errors)) }
    }

    /// Ends reading, returning the problems found so far (for callers that
    /// combine several readers).
    pub fn into_errors(self) -> Vec<SettingError> {
        self.errors
    }
}

/// Default snapshot name prefix.
pub const DEFAULT_SNAPSHOT_PREFIX: &str = "aurora-dr";

/// Default of `RETAIN_SNAPSHOTS`: how many of its own snapshots a side keeps.
pub const DEFAULT_RETAIN_SNAPSHOTS: u32 = 3;

/// Which of aurora-dr's own snapshots a side keeps (`steps::retention`
/// applies it): the newest `snapshots`, plus, when `days` is set, every one
/// taken less than `days` days before the current run started. The current
/// run's snapshots are always kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// `RETAIN_SNAPSHOTS`, 1 to 1000 (default 3).
    pub snapshots: u32,
    /// `RETAIN_DAYS`, 1 to 3650 (optional).
    pub days: Option<u32>,
}

impl Default for Retention {
    fn default() -> Self {
        Self { snapshots: DEFAULT_RETAIN_SNAPSHOTS, days: None }
    }
}

impl Retention {
    fn read(r: &mut Reader<'_>, snapshots: Key, days: Key) -> Self {
        Self {
            snapshots: r.number(snapshots, DEFAULT_RETAIN_SNAPSHOTS, 1..=1000),
            days: r.optional_number(days, 1..=3650),
        }
    }
}

/// The SanityCheck step's settings (target side). Without a secret the step
/// is a logged no-op that reports `skipped`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SanitySettings {
    /// `SANITY_SECRET_ARN`: Secrets Manager secret (target account and region)
    /// with `username` and `password` (the RDS secret shape; `dbname` is used
    /// when `SANITY_DATABASE` is unset).
    pub secret_arn: Option<Arn>,
    /// `SANITY_DATABASE`: the database to connect to.
    pub database: Option<String>,
    /// `SANITY_QUERY`: SQL that must return at least one row.
    pub query: Option<String>,
    /// `SANITY_MIN_ROWS`: `table=count` items, comma-separated.
    pub min_rows: Vec<crate::probe::MinRows>,
    /// `SANITY_FRESHNESS`: `[schema.]table.column` of a timestamp column.
    pub freshness: Option<crate::probe::FreshnessColumn>,
    /// `SANITY_RPO_SECONDS`: required with `SANITY_FRESHNESS`.
    pub rpo_seconds: Option<u32>,
    /// `SANITY_ENDPOINT_OVERRIDE`: `host:port` probed instead of the cluster's
    /// writer endpoint (local drills point it at a test server).
    pub endpoint_override: Option<crate::probe::HostPort>,
    /// `SANITY_TLS` (`require` by default) and `SANITY_TLS_CA_FILE`.
    pub tls: crate::probe::TlsMode,
    /// `SANITY_TIMEOUT_SECONDS`: bound of the connection and of each probe (default 10).
    pub timeout_seconds: u32,
}

impl SanitySettings {
    /// Whether the step probes at all (a secret is configured).
    pub fn enabled(&self) -> bool {
        self.secret_arn.is_some()
    }

    fn read(r: &mut Reader<'_>, region: Option<&Region>, account: Option<&AccountId>) -> Self {
        use crate::probe::{FreshnessColumn, HostPort, MinRows, TlsMode};
        use keys::*;
        let secret_arn = r.optional::<Arn>(SANITY_SECRET_ARN);
        if let Some(arn) = &secret_arn {
            if let Err(e) = arn.expect_kind("secretsmanager", "secret:") {
                r.problem(SANITY_SECRET_ARN, e.to_string());
            } else if region.is_some() && arn.region().as_ref() != region {
                r.problem(SANITY_SECRET_ARN, "the secret must be in the target region");
            } else if account.is_some() && arn.account().as_ref() != account {
                r.problem(SANITY_SECRET_ARN, "the secret must belong to the target account");
            }
        }
        let database = r.optional_text(SANITY_DATABASE).map(|d| d.trim().to_owned());
        let query = r.optional_text(SANITY_QUERY).map(|q| q.trim().to_owned());
        let mut min_rows = Vec::new();
        for item in r.list(SANITY_MIN_ROWS) {
            match item.parse::<MinRows>() {
                Ok(m) => min_rows.push(m),
                Err(e) => r.problem(SANITY_MIN_ROWS, e.to_string()),
            }
        }
        let freshness = r.optional::<FreshnessColumn>(SANITY_FRESHNESS);
        let rpo_seconds = r.optional_number(SANITY_RPO_SECONDS, 1..=31_536_000);
        match (&freshness, rpo_seconds) {
            (Some(_), None) if r.origin.raw(SANITY_RPO_SECONDS).is_none() => {
                r.problem(SANITY_RPO_SECONDS, "is required when SANITY_FRESHNESS is set")
            }
            (None, Some(_)) => {
                r.problem(SANITY_RPO_SECONDS, "is only used with SANITY_FRESHNESS, which is not set")
            }
            _ => {}
        }
        let endpoint_override = r.optional::<HostPort>(SANITY_ENDPOINT_OVERRIDE);
        let ca_file = r.optional_text(SANITY_TLS_CA_FILE).map(std::path::PathBuf::from);
        let tls = match r.optional_text(SANITY_TLS).as_deref().map(str::trim) {
            None | Some("require") => TlsMode::Require,
            Some("disable") => TlsMode::Disable,
            Some("verify-full") => match &ca_file {
                Some(path) => TlsMode::VerifyFull { ca_file: path.clone() },
                None => {
                    r.problem(SANITY_TLS_CA_FILE, "is required when SANITY_TLS is verify-full");
                    TlsMode::Require
                }
            },
            Some(other) => {
                r.problem(SANITY_TLS, format!("must be disable, require or verify-full (got {other:?})"));
                TlsMode::Require
            }
        };
        if ca_file.is_some() && !matches!(tls, TlsMode::VerifyFull { .. }) {
            r.problem(SANITY_TLS_CA_FILE, "is only used when SANITY_TLS is verify-full");
        }
        let timeout_seconds = r.number(SANITY_TIMEOUT_SECONDS, 10, 1..=60);
        Self {
            secret_arn,
            database,
            query,
            min_rows,
            freshness,
            rpo_seconds,
            endpoint_override,
            tls,
            timeout_seconds,
        }
    }
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
    pub target_account_id: AccountId,
    pub target_region: Region,
    /// The key in the target region the copy is encrypted with.
    pub kms_key_arn: Arn,
    /// Copy an unencrypted source (the copy is still encrypted).
    pub allow_unencrypted_source: bool,
    pub notification_topic_arn: Option<Arn>,
    pub failure_topic_arn: Option<Arn>,
    /// Which of its snapshots (source region) and copies (target region) to keep.
    pub retention: Retention,
}

/// Settings of the target side (account and region of the DR copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSettings {
    pub account_id: AccountId,
    pub region: Region,
    pub source_account_id: AccountId,
    pub engine: String,
    pub instance_class: String,
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
    /// Which of the target account's own copies to keep.
    pub retention: Retention,
    /// Target-owned encryption: when set, the shared snapshot is first copied
    /// into the target account encrypted with this key (target account,
    /// target region) and the cluster is restored from that copy.
    pub kms_key_arn: Option<Arn>,
    /// The SanityCheck step's probes (off without `SANITY_SECRET_ARN`);
    /// boxed to keep this struct, which every step context holds, small.
    pub sanity: Box<SanitySettings>,
}

impl SourceSettings {
    /// Reads the source settings (collecting problems into `r`).
    /// `kms_optional` lets drills create the key when absent.
    pub fn read(r: &mut Reader<'_>, kms_optional: bool) -> Option<Self> {
        use keys::*;
        let account_id = r.required::<AccountId>(SOURCE_ACCOUNT_ID);
        let region = r.required::<Region>(SOURCE_REGION);
        let cluster_ids = read_source_cluster_ids(r);
        let snapshot_prefix =
            r.optional_text(SNAPSHOT_PREFIX).unwrap_or_else(|| DEFAULT_SNAPSHOT_PREFIX.into());
        // The prefix starts the snapshot name, so it obeys the identifier rules.
        if let Err(e) = crate::ids::check_rds_identifier(&snapshot_prefix, 100) {
            r.problem(SNAPSHOT_PREFIX, e.to_string());
        }
        let target_account_id = r.required::<AccountId>(TARGET_ACCOUNT_ID);
        let target_region = r.required::<Region>(TARGET_REGION);
        let kms_key_arn =
            if kms_optional { r.optional::<Arn>(KMS_KEY_ARN) } else { r.required::<Arn>(KMS_KEY_ARN) };
        if let (Some(arn), Some(target_region)) = (&kms_key_arn, &target_region) {
            check_kms_key(r, arn, target_region, account_id.as_ref());
        }
        let allow_unencrypted_source = r.flag(ALLOW_UNENCRYPTED_SOURCE, false);
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
            kms_key_arn: kms_key_arn.or_else(|| if kms_optional { Some(placeholder_key()) } else { None })?,
            allow_unencrypted_source,
            notification_topic_arn,
            failure_topic_arn,
            retention,
        })
    }

    /// Reads the source settings from the process environment (Lambda start-up).
    pub fn from_env() -> Result<Self, SettingsError> {
        let origin = Origin::process_env();
        let mut r = Reader::new(&origin);
        let s = Self::read(&mut r, false);
        r.finish()?;
        s.ok_or_else(|| SettingsError(Vec::new()))
    }

    /// Whether the KMS key is a placeholder to be created by a drill.
    pub fn kms_key_is_placeholder(&self) -> bool {
        self.kms_key_arn == placeholder_key()
    }
}

/// Stands for "no key configured" when a drill will create one.
fn placeholder_key() -> Arn {
    "arn:aws:kms:us-east-1:000000000000:key/to-be-created".parse().unwrap_or_else(|_| unreachable!())
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

/// The target-owned key encrypts the target account's own copy, so it is a
/// key of the target account in the target region.
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
                "key is in region {} but the own copy is made in the target region {region}",
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
        let instance_count = r.number(INSTANCE_COUNT, 1, 1..=16);
        let pairs = read_pairs(r, instance_count);
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
        let final_snapshot = r.flag(FINAL_SNAPSHOT, false);
        let keep_failed_temp_cluster = r.flag(KEEP_FAILED_TEMP_CLUSTER, false);
        let retention = Retention::read(r, TARGET_RETAIN_SNAPSHOTS, TARGET_RETAIN_DAYS);
        let kms_key_arn = r.optional::<Arn>(TARGET_KMS_KEY_ARN);
        if let Some(arn) = &kms_key_arn {
            check_target_kms_key(r, arn, region.as_ref(), account_id.as_ref());
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
            retention,
            kms_key_arn,
            sanity,
        })
    }

    /// Reads the target settings from the process environment (Lambda start-up).
    pub fn from_env() -> Result<Self, SettingsError> {
        let origin = Origin::process_env();
        let mut r = Reader::new(&origin);
        let s = Self::read(&mut r);
        r.finish()?;
        s.ok_or_else(|| SettingsError(Vec::new()))
    }

    /// The id of the `n`-th instance (1-based) under a base id: the base
    /// itself for the first (the writer), `{base}-{n}` for the others.
    pub fn nth_instance(base: &InstanceId, n: u32) -> InstanceId {
        if n <= 1 {
            return base.clone();
        }
        let suffix = format!("-{n}");
        let keep = 63usize.saturating_sub(suffix.len());
        let stem: String = base.as_str().chars().take(keep).collect();
        format!("{}{suffix}", stem.trim_end_matches('-')).parse().unwrap_or_else(|_| base.clone())
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

/// The fields of a pair: `[[pairs]]` keys, and the order of a `CLUSTER_PAIRS` entry.
pub const PAIR_FIELDS: [&str; 5] = [
    "source_cluster_id",
    "existing_cluster_id",
    "temp_cluster_id",
    "existing_instance_id",
    "temp_instance_id",
];

impl Reader<'_> {
    fn problem_named(&mut self, name: String, problem: impl Into<String>) {
        self.errors.push(SettingError { name, problem: problem.into() });
    }

    /// The raw entries of `CLUSTER_PAIRS` / `[[pairs]]`: (name, field -> value).
    /// The TOML reader flattens `[[pairs]]` to `pairs[i].field` keys.
    fn pair_entries(&mut self, key: Key) -> Vec<(String, BTreeMap<String, String>)> {
        let base = self.origin.name(key);
        match self.origin {
            Origin::Toml(map) => {
                let mut entries: BTreeMap<usize, BTreeMap<String, String>> = BTreeMap::new();
                for (k, v) in map {
                    let Some(rest) = k.strip_prefix(base).and_then(|r| r.strip_prefix('[')) else { continue };
                    let Some((index, field)) = rest.split_once("].") else { continue };
                    if let Ok(i) = index.parse::<usize>() {
                        entries.entry(i).or_default().insert(field.to_owned(), v.trim().to_owned());
                    }
                }
                entries.into_iter().map(|(i, fields)| (format!("{base}[{i}]"), fields)).collect()
            }
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

/// A pair and the setting name of each of its fields (for error messages).
struct NamedPair {
    pair: ClusterPair,
    names: [String; 5],
}

/// The single-cluster keys (one implicit pair) and every `CLUSTER_PAIRS`
/// entry, each checked with the identifier rules, and all checked together:
/// one pair per source cluster, and no target cluster or instance id used
/// twice (two pairs must never restore over the same names).
fn read_pairs(r: &mut Reader<'_>, instance_count: u32) -> Option<Vec<ClusterPair>> {
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

/// Across pairs: one pair per source cluster; every cluster id and every
/// instance id (with the numbered ids `DB_INSTANCE_COUNT` adds) used once.
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
pub(crate) mod tests {
    use super::*;

    pub(crate) fn env(pairs: &[(&str, &str)]) -> Origin {
        Origin::Env(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
    }

    pub(crate) const SOURCE_ENV: &[(&str, &str)] = &[
        ("SOURCE_ACCOUNT_ID", "111111111111"),
        ("SOURCE_REGION", "us-west-2"),
        ("SOURCE_CLUSTER_ID", "orders"),
        ("TARGET_ACCOUNT_ID", "222222222222"),
        ("TARGET_REGION", "us-west-1"),
        ("KMS_KEY_ARN", "arn:aws:kms:us-west-1:111111111111:key/0f0e0d0c-0000-4000-8000-000000000001"),
        ("NOTIFICATION_TOPIC_ARN", "arn:aws:sns:us-west-2:111111111111:aurora-dr-snapshots"),
    ];

    pub(crate) const TARGET_ENV: &[(&str, &str)] = &[
        ("TARGET_ACCOUNT_ID", "222222222222"),
        ("TARGET_REGION", "us-west-1"),
        ("SOURCE_ACCOUNT_ID", "111111111111"),
        ("ENGINE", "aurora-postgresql"),
        ("DB_INSTANCE_CLASS", "db.r6g.large"),
        ("EXISTING_CLUSTER_ID", "orders-dr"),
        ("TEMP_CLUSTER_ID", "orders-dr-next"),
        ("EXISTING_INSTANCE_ID", "orders-dr-1"),
        ("TEMP_INSTANCE_ID", "orders-dr-next-1"),
        ("SOURCE_TOPIC_ARN", "arn:aws:sns:us-west-2:111111111111:aurora-dr-snapshots"),
        ("STATE_MACHINE_ARN", "arn:aws:states:us-west-1:222222222222:stateMachine:aurora-dr-target"),
    ];

    pub(crate) fn source_settings() -> SourceSettings {
        let origin = env(SOURCE_ENV);
        let mut r = Reader::new(&origin);
        let s = SourceSettings::read(&mut r, false).expect("settings");
        r.finish().expect("valid");
        s
    }

    pub(crate) fn target_settings() -> TargetSettings {
        let origin = env(TARGET_ENV);
        let mut r = Reader::new(&origin);
        let s = TargetSettings::read(&mut r).expect("settings");
        r.finish().expect("valid");
        s
    }

    fn with(base: &[(&'static str, &'static str)], key: &'static str, value: Option<&'static str>) -> Origin {
        let mut pairs: Vec<(&str, &str)> = base.iter().filter(|(k, _)| *k != key).copied().collect();
        if let Some(v) = value {
            pairs.push((key, v));
        }
        env(&pairs)
    }

    #[test]
    fn valid_settings_parse() {
        let s = source_settings();
        assert_eq!(s.snapshot_prefix, "aurora-dr");
        assert!(!s.allow_unencrypted_source);
        let t = target_settings();
        assert_eq!(t.instance_count, 1);
        assert_eq!(t.temp_instance_ids().len(), 1);
    }

    #[test]
    fn each_bad_source_setting_is_named_with_its_rule() {
        let same_account = ("TARGET_ACCOUNT_ID", Some("111111111111"));
        type Override<'a> = (&'a str, Option<&'a str>);
        let cases: &[(&str, Option<&str>, &str, Option<Override>)] = &[
            ("SOURCE_ACCOUNT_ID", None, "required", None),
            ("SOURCE_ACCOUNT_ID", Some("11111111111"), "12 digits", None),
            ("SOURCE_ACCOUNT_ID", Some("1111111111111"), "12 digits", None),
            ("SOURCE_ACCOUNT_ID", Some("11111111111x"), "12 digits", None),
            ("SOURCE_REGION", Some("us-west"), "region name", None),
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
            ("ALLOW_UNENCRYPTED_SOURCE", Some("maybe"), "true or false", None),
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
            let _ = SourceSettings::read(&mut r, false);
            let errors = r.finish().expect_err(key).0;
            assert!(
                errors.iter().any(|e| e.name == *key && e.problem.contains(rule)),
                "{key}={value:?}: want {rule:?} in {errors:?}"
            );
        }
    }

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
            ("TEMP_CLUSTER_ID", Some("ORDERS-DR"), "must differ"),
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
    fn all_problems_are_reported_at_once_and_toml_names_keys() {
        let origin = Origin::Toml(
            [("source.account_id", "1"), ("source.cluster_id", "x_y")]
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        let mut r = Reader::new(&origin);
        assert!(SourceSettings::read(&mut r, true).is_none());
        let names: Vec<String> = r.into_errors().into_iter().map(|e| e.name).collect();
        for want in
            ["source.account_id", "source.region", "source.cluster_id", "target.account_id", "target.region"]
        {
            assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
        }
    }

    #[test]
    fn retention_and_target_key_default_off_and_parse() {
        assert_eq!(source_settings().retention, Retention { snapshots: 3, days: None });
        let t = target_settings();
        assert_eq!(t.retention, Retention { snapshots: 3, days: None });
        assert_eq!(t.kms_key_arn, None);

        let key = "arn:aws:kms:us-west-1:222222222222:key/1111aaaa-0000-4000-8000-000000000002";
        let mut pairs = TARGET_ENV.to_vec();
        pairs.extend([("RETAIN_SNAPSHOTS", "7"), ("RETAIN_DAYS", "30"), ("TARGET_KMS_KEY_ARN", key)]);
        let origin = env(&pairs);
        let mut r = Reader::new(&origin);
        let t = TargetSettings::read(&mut r).expect("settings");
        r.finish().expect("valid");
        assert_eq!(t.retention, Retention { snapshots: 7, days: Some(30) });
        assert_eq!(t.kms_key_arn.as_ref().map(Arn::as_str), Some(key));

        let origin = Origin::Toml(
            [
                ("source.account_id", "111111111111"),
                ("source.region", "us-west-2"),
                ("source.cluster_id", "orders"),
                ("target.account_id", "222222222222"),
                ("target.region", "us-west-1"),
                ("source.retain_snapshots", "2"),
                ("source.retain_days", "14"),
            ]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        );
        let mut r = Reader::new(&origin);
        let s = SourceSettings::read(&mut r, true).expect("settings");
        r.finish().expect("valid");
        assert_eq!(s.retention, Retention { snapshots: 2, days: Some(14) });
    }

    #[test]
    fn bad_retention_and_target_key_settings_are_named_with_their_rule() {
        type Case =
            (&'static [(&'static str, &'static str)], &'static str, Option<&'static str>, &'static str);
        let cases: &[Case] = &[
            (SOURCE_ENV, "RETAIN_SNAPSHOTS", Some("0"), "from 1 to 1000"),
            (SOURCE_ENV, "RETAIN_SNAPSHOTS", Some("three"), "whole number"),
            (SOURCE_ENV, "RETAIN_DAYS", Some("0"), "from 1 to 3650"),
            (SOURCE_ENV, "RETAIN_DAYS", Some("-1"), "whole number"),
            (TARGET_ENV, "RETAIN_SNAPSHOTS", Some("1001"), "from 1 to 1000"),
            (TARGET_ENV, "RETAIN_DAYS", Some("3651"), "from 1 to 3650"),
            (TARGET_ENV, "TARGET_KMS_KEY_ARN", Some("alias/dr"), "ARN"),
            (
                TARGET_ENV,
                "TARGET_KMS_KEY_ARN",
                Some("arn:aws:kms:us-west-1:222222222222:alias/dr"),
                "aliases are not accepted",
            ),
            (
                TARGET_ENV,
                "TARGET_KMS_KEY_ARN",
                Some("arn:aws:kms:us-west-2:222222222222:key/k"),
                "target region",
            ),
            (
                TARGET_ENV,
                "TARGET_KMS_KEY_ARN",
                Some("arn:aws:kms:us-west-1:111111111111:key/k"),
                "target account",
            ),
        ];
        for (base, key, value, rule) in cases {
            let origin = with(base, key, *value);
            let mut r = Reader::new(&origin);
            if base[0].0 == "SOURCE_ACCOUNT_ID" {
                let _ = SourceSettings::read(&mut r, false);
            } else {
                let _ = TargetSettings::read(&mut r);
            }
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
    fn source_clusters_come_from_the_single_key_and_the_list() {
        let mut pairs = SOURCE_ENV.to_vec();
        pairs.push(("SOURCE_CLUSTER_IDS", "billing, Orders ,ledger"));
        let origin = env(&pairs);
        let mut r = Reader::new(&origin);
        let s = SourceSettings::read(&mut r, false).expect("settings");
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
        let s = SourceSettings::read(&mut r, false).expect("settings");
        r.finish().expect("valid");
        assert_eq!(s.cluster_id.as_str(), "billing");
        for (value, rule) in [("billing,led--ger", "consecutive"), ("", "required")] {
            let origin = with(SOURCE_ENV, "SOURCE_CLUSTER_ID", None);
            let Origin::Env(mut map) = origin else { unreachable!() };
            map.insert("SOURCE_CLUSTER_IDS".into(), value.into());
            let origin = Origin::Env(map);
            let mut r = Reader::new(&origin);
            let _ = SourceSettings::read(&mut r, false);
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
        let billing: ClusterId = "Billing".parse().expect("id");
        let chosen = s.for_cluster(Some(&billing)).expect("configured");
        assert_eq!(chosen.cluster_id.as_str(), "billing", "the configured spelling");
        assert!(s.serves("BILLING") && !s.serves("payroll"));
        let payroll: ClusterId = "payroll".parse().expect("id");
        let err = s.for_cluster(Some(&payroll)).expect_err("not configured");
        assert_eq!(err.asl_name(), "InvalidInput");
        assert!(err.to_string().contains("payroll") && err.to_string().contains("orders, billing"), "{err}");
        let err = s.for_cluster(None).expect_err("ambiguous");
        assert!(err.to_string().contains("clusters"), "{err}");
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
        let mut map: BTreeMap<String, String> = [
            ("source.account_id", "111111111111"),
            ("source.cluster_id", "orders"),
            ("target.account_id", "222222222222"),
            ("target.region", "us-west-1"),
            ("target.engine", "aurora-postgresql"),
            ("target.instance_class", "db.r6g.large"),
            ("target.existing_cluster_id", "orders-dr"),
            ("target.temp_cluster_id", "orders-dr-next"),
            ("target.existing_instance_id", "orders-dr-1"),
            ("target.temp_instance_id", "orders-dr-next-1"),
        ]
        .iter()
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
            (&[("CLUSTER_PAIRS", "orders=dr:DR:e:ti")], "CLUSTER_PAIRS[0].temp_cluster_id", "must differ"),
            (&[("CLUSTER_PAIRS", "orders=dr:t:e:E")], "CLUSTER_PAIRS[0].temp_instance_id", "must differ"),
            (
                &[("CLUSTER_PAIRS", "orders=dr:t:e:ti;Orders=dr2:t2:e2:ti2")],
                "CLUSTER_PAIRS[1].source_cluster_id",
                "already has a pair",
            ),
            (
                &[("CLUSTER_PAIRS", "orders=dr:t:e:ti;billing=t:t2:e2:ti2")],
                "CLUSTER_PAIRS[1].existing_cluster_id",
                "already used by CLUSTER_PAIRS[0].temp_cluster_id",
            ),
            (
                &[("CLUSTER_PAIRS", "orders=dr:t:e:ti;billing=dr2:t2:e2:E")],
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
