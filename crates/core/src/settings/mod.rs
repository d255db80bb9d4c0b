//! Static settings of both sides, read once at start and validated.
//!
//! The same settings come from two places: Lambda environment variables
//! (set by `template.yaml` from stack parameters) and the CLI's TOML file.
//! Each setting is declared once in [`keys`] with its variable name and its
//! TOML key ([`keys::ALL`] lists them all), so both readers apply the same
//! rules and every error names the variable (or key) and the rule it broke.
//! Readers collect every problem before failing.
//!
//! The module follows its seams: this file is the reader (keys, origins,
//! [`Reader`], the errors) and what both sides share ([`Retention`]);
//! [`source`], [`target`] (with the cluster pairs of many clusters) and
//! [`sanity`] read each side's settings.

mod sanity;
mod source;
mod target;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::ids::InvalidValue;

pub use sanity::SanitySettings;
pub use source::{DrTarget, MAX_SHARED_ACCOUNTS, SourceSettings, TARGETS_TABLE, TargetRegion};
pub use target::{ClusterPair, PAIR_FIELDS, ServerlessCapacity, TargetSettings};

/// One setting's two names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub env: &'static str,
    pub toml: &'static str,
}

const fn key(env: &'static str, toml: &'static str) -> Key {
    Key { env, toml }
}

/// Every setting, each declared once with both its names: the environment
/// reader and the CLI's TOML reader both read these, so a key added here is
/// known to both.
pub mod keys {
    use super::{Key, key};
    pub const SOURCE_ACCOUNT_ID: Key = key("SOURCE_ACCOUNT_ID", "source.account_id");
    pub const SOURCE_REGION: Key = key("SOURCE_REGION", "source.region");
    pub const SOURCE_CLUSTER_ID: Key = key("SOURCE_CLUSTER_ID", "source.cluster_id");
    /// Many clusters: a comma list (env) or a list of strings (TOML).
    pub const SOURCE_CLUSTER_IDS: Key = key("SOURCE_CLUSTER_IDS", "source.cluster_ids");
    pub const SNAPSHOT_PREFIX: Key = key("SNAPSHOT_PREFIX", "source.snapshot_prefix");
    pub const KMS_KEY_ARN: Key = key("KMS_KEY_ARN", "source.kms_key_arn");
    pub const NOTIFICATION_TOPIC_ARN: Key = key("NOTIFICATION_TOPIC_ARN", "source.notification_topic_arn");
    pub const SOURCE_FAILURE_TOPIC_ARN: Key = key("FAILURE_TOPIC_ARN", "source.failure_topic_arn");
    pub const SOURCE_RETAIN_SNAPSHOTS: Key = key("RETAIN_SNAPSHOTS", "source.retain_snapshots");
    pub const SOURCE_RETAIN_DAYS: Key = key("RETAIN_DAYS", "source.retain_days");

    pub const TARGET_ACCOUNT_ID: Key = key("TARGET_ACCOUNT_ID", "target.account_id");
    pub const TARGET_REGION: Key = key("TARGET_REGION", "target.region");
    pub const ENGINE: Key = key("ENGINE", "target.engine");
    pub const INSTANCE_CLASS: Key = key("DB_INSTANCE_CLASS", "target.instance_class");
    pub const SERVERLESS_MIN_CAPACITY: Key = key("SERVERLESS_MIN_CAPACITY", "target.serverless_min_capacity");
    pub const SERVERLESS_MAX_CAPACITY: Key = key("SERVERLESS_MAX_CAPACITY", "target.serverless_max_capacity");
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
    /// Whether a run may replace a cluster without aurora-dr's tags that
    /// already serves under the existing name (see [`super::TargetSettings::adopt_existing`]).
    pub const ADOPT_EXISTING: Key = key("ADOPT_EXISTING", "target.adopt_existing");
    pub const TARGET_RETAIN_SNAPSHOTS: Key = key("RETAIN_SNAPSHOTS", "target.retain_snapshots");
    pub const TARGET_RETAIN_DAYS: Key = key("RETAIN_DAYS", "target.retain_days");
    /// The target account's key the DR cluster is encrypted with (and its own
    /// copy, with [`TARGET_OWN_COPY`]).
    pub const TARGET_KMS_KEY_ARN: Key = key("TARGET_KMS_KEY_ARN", "target.kms_key_arn");
    /// Whether the shared snapshot is first copied into the target account.
    pub const TARGET_OWN_COPY: Key = key("TARGET_OWN_COPY", "target.own_copy");
    /// The DynamoDB table of the callback waits' task tokens (crate::wait_tokens).
    pub const WAIT_TOKENS_TABLE: Key = key("WAIT_TOKENS_TABLE", "target.wait_tokens_table");
    // SanityCheck (see [`super::SanitySettings`]).
    pub const SANITY_SECRET_ARN: Key = key("SANITY_SECRET_ARN", "target.sanity_secret_arn");
    pub const SANITY_DATABASE: Key = key("SANITY_DATABASE", "target.sanity_database");
    pub const SANITY_QUERY: Key = key("SANITY_QUERY", "target.sanity_query");
    pub const SANITY_MIN_ROWS: Key = key("SANITY_MIN_ROWS", "target.sanity_min_rows");
    pub const SANITY_FRESHNESS: Key = key("SANITY_FRESHNESS", "target.sanity_freshness");
    pub const SANITY_RPO_SECONDS: Key = key("SANITY_RPO_SECONDS", "target.sanity_rpo_seconds");
    pub const SANITY_TLS: Key = key("SANITY_TLS", "target.sanity_tls");
    pub const SANITY_TLS_CA_FILE: Key = key("SANITY_TLS_CA_FILE", "target.sanity_tls_ca_file");
    pub const SANITY_TIMEOUT_SECONDS: Key = key("SANITY_TIMEOUT_SECONDS", "target.sanity_timeout_seconds");

    /// Settings that no longer exist, each with why and what to do instead:
    /// set, they are refused at start (a deployment must not believe it got
    /// what RDS cannot do). Written as struct literals: they are no key of
    /// the template's functions.
    pub const REMOVED: &[(Key, &str)] = &[(
        Key { env: "ALLOW_UNENCRYPTED_SOURCE", toml: "source.allow_unencrypted_source" },
        "is no longer a setting: RDS cannot encrypt an unencrypted cluster snapshot while copying it \
         (CopyDBClusterSnapshot refuses a KmsKeyId for one), so an unencrypted source cannot be copied \
         encrypted; encrypt the source cluster instead (README, \"How a run is kept safe\")",
    )];

    /// Every key above: what the environment may set and the TOML file may hold.
    pub const ALL: &[Key] = &[
        SOURCE_ACCOUNT_ID,
        SOURCE_REGION,
        SOURCE_CLUSTER_ID,
        SOURCE_CLUSTER_IDS,
        SNAPSHOT_PREFIX,
        KMS_KEY_ARN,
        NOTIFICATION_TOPIC_ARN,
        SOURCE_FAILURE_TOPIC_ARN,
        SOURCE_RETAIN_SNAPSHOTS,
        SOURCE_RETAIN_DAYS,
        TARGET_ACCOUNT_ID,
        TARGET_REGION,
        ENGINE,
        INSTANCE_CLASS,
        SERVERLESS_MIN_CAPACITY,
        SERVERLESS_MAX_CAPACITY,
        INSTANCE_COUNT,
        EXISTING_CLUSTER_ID,
        TEMP_CLUSTER_ID,
        EXISTING_INSTANCE_ID,
        TEMP_INSTANCE_ID,
        CLUSTER_PAIRS,
        SOURCE_TOPIC_ARN,
        STATE_MACHINE_ARN,
        TARGET_FAILURE_TOPIC_ARN,
        DB_SUBNET_GROUP,
        VPC_SECURITY_GROUP_IDS,
        DB_CLUSTER_PARAMETER_GROUP,
        DELETION_PROTECTION,
        FINAL_SNAPSHOT,
        KEEP_FAILED_TEMP_CLUSTER,
        ADOPT_EXISTING,
        TARGET_RETAIN_SNAPSHOTS,
        TARGET_RETAIN_DAYS,
        TARGET_KMS_KEY_ARN,
        TARGET_OWN_COPY,
        WAIT_TOKENS_TABLE,
        SANITY_SECRET_ARN,
        SANITY_DATABASE,
        SANITY_QUERY,
        SANITY_MIN_ROWS,
        SANITY_FRESHNESS,
        SANITY_RPO_SECONDS,
        SANITY_TLS,
        SANITY_TLS_CA_FILE,
        SANITY_TIMEOUT_SECONDS,
    ];
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

/// The variable that picks the side (`source` | `target`).
pub const SIDE: &str = "SIDE";

/// Where values come from: environment variables or a flattened TOML table.
#[derive(Debug, Clone)]
pub enum Origin {
    Env(BTreeMap<String, String>),
    Toml(BTreeMap<String, String>),
}

impl Origin {
    /// The settings in the process environment: [`Origin::env_from`] of it.
    pub fn process_env() -> Self {
        Self::env_from(std::env::vars())
    }

    /// Only the variables a setting names (`SIDE` and [`keys::ALL`]): the
    /// Lambda environment also holds the execution role's
    /// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, which must never sit
    /// in a value that `Debug` prints or an error quotes.
    pub fn env_from(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let known = |name: &str| name == SIDE || keys::ALL.iter().any(|k| k.env == name);
        Self::Env(vars.into_iter().filter(|(name, _)| known(name)).collect())
    }

    fn name(&self, key: Key) -> &'static str {
        match self {
            Self::Env(_) => key.env,
            Self::Toml(_) => key.toml,
        }
    }

    /// The tables of an array of tables (`[[pairs]]`, `[[targets]]`), which
    /// the TOML reader flattens to `name[i].field` keys: (`name[i]`, field ->
    /// value), in order. None from the environment.
    pub fn table_entries(&self, name: &str) -> Vec<(String, BTreeMap<String, String>)> {
        let Self::Toml(map) = self else { return Vec::new() };
        let mut entries: BTreeMap<usize, BTreeMap<String, String>> = BTreeMap::new();
        for (k, v) in map {
            let Some(rest) = k.strip_prefix(name).and_then(|r| r.strip_prefix('[')) else { continue };
            let Some((index, field)) = rest.split_once("].") else { continue };
            if let Ok(i) = index.parse::<usize>() {
                entries.entry(i).or_default().insert(field.to_owned(), v.trim().to_owned());
            }
        }
        entries.into_iter().map(|(i, fields)| (format!("{name}[{i}]"), fields)).collect()
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

    /// A required value of a table entry, told under its own `name`
    /// (`targets[1].region`).
    pub(crate) fn named_value<T: FromStr<Err = InvalidValue>>(
        &mut self,
        name: &str,
        raw: Option<&String>,
    ) -> Option<T> {
        let problem = match raw.map(|v| v.trim()).filter(|v| !v.is_empty()).map(str::parse::<T>) {
            Some(Ok(v)) => return Some(v),
            Some(Err(e)) => e.to_string(),
            None => "is required but not set".to_owned(),
        };
        self.errors.push(SettingError { name: name.to_owned(), problem });
        None
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
    pub(crate) fn read(r: &mut Reader<'_>, snapshots: Key, days: Key) -> Self {
        Self {
            snapshots: r.number(snapshots, DEFAULT_RETAIN_SNAPSHOTS, 1..=1000),
            days: r.optional_number(days, 1..=3650),
        }
    }
}
