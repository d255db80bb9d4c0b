//! The CLI's TOML configuration: one file for both sides.
//!
//! ```toml
//! [source]
//! account_id = "111111111111"
//! region = "us-west-2"
//! cluster_id = "orders"
//! snapshot_prefix = "aurora-dr"      # optional
//! kms_key_arn = "arn:aws:kms:..."    # optional for drills: created when absent
//! [target]
//! account_id = "222222222222"
//! region = "us-west-1"
//! engine = "aurora-postgresql"
//! instance_class = "db.r6g.large"
//! existing_cluster_id = "orders-dr"
//! temp_cluster_id = "orders-dr-next"
//! existing_instance_id = "orders-dr-1"
//! temp_instance_id = "orders-dr-next-1"
//! ```
//!
//! The keys are the same settings the Lambdas read from their environment
//! (`aurora_dr_core::settings::keys`), validated by the same code. Reading
//! reports every problem in the file at once, each naming its key.

use std::collections::BTreeMap;
use std::path::Path;

use aurora_dr_core::settings::{Origin, Reader, SettingError, SourceSettings, TargetSettings, keys};

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: SourceSettings,
    pub target: TargetSettings,
    /// Whether `source.kms_key_arn` was given (drills create a key otherwise).
    pub kms_key_given: bool,
}

/// Every problem found in a configuration file.
#[derive(Debug, Clone)]
pub struct ConfigErrors {
    pub file: String,
    pub errors: Vec<SettingError>,
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}: {} problem(s)", self.file, self.errors.len())?;
        for e in &self.errors {
            writeln!(f, "  {}: {}", e.name, e.problem)?;
        }
        Ok(())
    }
}

/// Every TOML key the file may contain.
fn known_keys() -> Vec<&'static str> {
    use keys::*;
    [
        SOURCE_ACCOUNT_ID,
        SOURCE_REGION,
        SOURCE_CLUSTER_ID,
        SNAPSHOT_PREFIX,
        KMS_KEY_ARN,
        ALLOW_UNENCRYPTED_SOURCE,
        NOTIFICATION_TOPIC_ARN,
        SOURCE_FAILURE_TOPIC_ARN,
        TARGET_ACCOUNT_ID,
        TARGET_REGION,
        ENGINE,
        INSTANCE_CLASS,
        INSTANCE_COUNT,
        EXISTING_CLUSTER_ID,
        TEMP_CLUSTER_ID,
        EXISTING_INSTANCE_ID,
        TEMP_INSTANCE_ID,
        SOURCE_TOPIC_ARN,
        STATE_MACHINE_ARN,
        TARGET_FAILURE_TOPIC_ARN,
        DB_SUBNET_GROUP,
        VPC_SECURITY_GROUP_IDS,
        DB_CLUSTER_PARAMETER_GROUP,
        DELETION_PROTECTION,
        FINAL_SNAPSHOT,
        KEEP_FAILED_TEMP_CLUSTER,
    ]
    .iter()
    .map(|k| k.toml)
    .collect()
}

impl Config {
    /// Reads and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            file: file.clone(),
            errors: vec![SettingError { name: "(file)".into(), problem: format!("cannot be read: {e}") }],
        })?;
        Self::parse(&text).map_err(|errors| ConfigErrors { file, errors })
    }

    /// Validates a configuration text.
    pub fn parse(text: &str) -> Result<Self, Vec<SettingError>> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            vec![SettingError { name: "(syntax)".into(), problem: e.to_string().trim().replace('\n', " ") }]
        })?;
        let mut errors = Vec::new();
        let mut flat = BTreeMap::new();
        flatten("", &table, &mut flat, &mut errors);
        let known = known_keys();
        for key in flat.keys() {
            if !known.contains(&key.as_str()) {
                errors.push(SettingError { name: key.clone(), problem: "is not a known setting".into() });
            }
        }
        let kms_key_given = flat.contains_key(keys::KMS_KEY_ARN.toml);
        let origin = Origin::Toml(flat);
        let mut reader = Reader::new(&origin);
        let source = SourceSettings::read(&mut reader, true);
        let target = TargetSettings::read(&mut reader);
        errors.extend(reader.into_errors());
        // A key can be read by both sides (source.account_id); report it once.
        errors.dedup();
        match (source, target) {
            (Some(source), Some(target)) if errors.is_empty() => Ok(Self { source, target, kms_key_given }),
            _ => Err(errors),
        }
    }
}

/// Flattens `[source] region = ".."` into `source.region`; scalars become strings.
fn flatten(
    prefix: &str,
    table: &toml::Table,
    out: &mut BTreeMap<String, String>,
    errors: &mut Vec<SettingError>,
) {
    for (k, v) in table {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out, errors),
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            toml::Value::Integer(i) => {
                out.insert(key, i.to_string());
            }
            toml::Value::Boolean(b) => {
                out.insert(key, b.to_string());
            }
            toml::Value::Array(items) => {
                let mut parts = Vec::new();
                for item in items {
                    match item.as_str() {
                        Some(s) => parts.push(s.to_owned()),
                        None => errors.push(SettingError {
                            name: key.clone(),
                            problem: "must be a list of strings".into(),
                        }),
                    }
                }
                out.insert(key, parts.join(","));
            }
            other => errors.push(SettingError {
                name: key,
                problem: format!("must be a string, number or boolean, not {}", other.type_str()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const EXAMPLE: &str = r#"
[source]
account_id = "111111111111"
region = "us-west-2"
cluster_id = "orders"
[target]
account_id = "222222222222"
region = "us-west-1"
engine = "aurora-postgresql"
instance_class = "db.r6g.large"
existing_cluster_id = "orders-dr"
temp_cluster_id = "orders-dr-next"
existing_instance_id = "orders-dr-1"
temp_instance_id = "orders-dr-next-1"
"#;

    #[test]
    fn example_is_valid() {
        let c = Config::parse(EXAMPLE).expect("valid");
        assert_eq!(c.source.snapshot_prefix, "aurora-dr");
        assert!(!c.kms_key_given);
        assert_eq!(c.target.existing_cluster_id.as_str(), "orders-dr");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let text = EXAMPLE
            .replace("\"111111111111\"", "\"1111\"")
            .replace("\"orders-dr-next\"", "\"orders--next\"")
            .replace("instance_class = \"db.r6g.large\"", "instance_class = \"large\"\ncolour = \"blue\"")
            .replace("region = \"us-west-1\"", "region = 5");
        let errors = Config::parse(&text).expect_err("invalid");
        let names: Vec<&str> = errors.iter().map(|e| e.name.as_str()).collect();
        for want in [
            "source.account_id",
            "target.temp_cluster_id",
            "target.instance_class",
            "target.colour",
            "target.region",
        ] {
            assert!(names.contains(&want), "{want} not in {names:?}");
        }
    }

    #[test]
    fn syntax_errors_are_named() {
        let errors = Config::parse("[source\nx=").expect_err("syntax");
        assert_eq!(errors[0].name, "(syntax)");
    }
}
