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
//! Many clusters: `source.cluster_ids = [...]` and one `[[pairs]]` table per
//! source cluster (`source_cluster_id`, `existing_cluster_id`,
//! `temp_cluster_id`, `existing_instance_id`, `temp_instance_id`); the
//! single-cluster keys stay valid as one more pair. Every source cluster needs
//! a pair (the source list is the single `cluster_id`, `cluster_ids` and the
//! pairs' sources).
//!
//! Many DR targets: `[[targets]]` tables instead of `[target]`, each with
//! the keys of a `[target]` table, and `source.kms_key_arn` a list with one
//! key of the source account per target region (a region without a key gets
//! one the drill creates). Each target region gets one copy, shared with
//! every target account there (at most 20: RDS shares a snapshot with at
//! most 20 accounts). The pairs serve every target.
//!
//! The keys are the same settings the Lambdas read from their environment
//! (`aurora_dr_core::settings::keys::ALL`), validated by the same code, plus
//! what only a drill uses: `[drill]` and `target.sanity_endpoint_override`
//! (see [`DRILL_KEYS`]), and what only a deployment uses (the schedule, the
//! alarm e-mail: the keys `tools/rehearse/params.toml` maps to stack
//! parameters that are not Lambda settings, [`crate::deploy_params`]).
//! Reading reports every problem in the file at once, each naming its key; a
//! missing `[source]` or `[target]` section is one problem, not one per key.

use std::collections::BTreeMap;
use std::path::Path;

use aurora_dr_core::ids::Region;
use aurora_dr_core::probe::HostPort;
use aurora_dr_core::settings::{
    Origin, Reader, SettingError, SourceSettings, TARGETS_TABLE, TargetSettings, keys,
};

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: SourceSettings,
    /// The first of [`Self::targets`]: the one target of a `[target]` file.
    pub target: TargetSettings,
    /// Every target (`[target]`, or each `[[targets]]` table), in the
    /// order of `source.targets`.
    pub targets: Vec<TargetSettings>,
    /// Whether `source.kms_key_arn` was given for every target region. For a
    /// region without one, `source` holds [`KMS_KEY_TO_BE_CREATED`] in that
    /// region until the drill creates the key (it never reaches a step).
    pub kms_key_given: bool,
    /// The target regions whose `source.kms_key_arn` was not given.
    pub kms_keys_to_create: Vec<Region>,
    /// `[drill] sanity_username`/`sanity_password`: the login the drill
    /// stores in a secret of the target account for the SanityCheck step.
    pub drill_sanity_login: Option<SanityLogin>,
    /// `target.sanity_endpoint_override`: where the drill's SanityCheck
    /// probes connect (a local test server; the emulator's cluster endpoints
    /// are names nothing answers on).
    pub drill_sanity_endpoint: Option<HostPort>,
    /// Every value of the file as written, flattened (`source.region`,
    /// lists joined with `,`): what `deploy-params` maps to stack parameters.
    pub values: BTreeMap<String, String>,
}

/// A database login the drill puts into the SanityCheck secret.
#[derive(Clone)]
pub struct SanityLogin {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SanityLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SanityLogin")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Drill-only keys (not Lambda settings).
pub const DRILL_SANITY_USERNAME: &str = "drill.sanity_username";
pub const DRILL_SANITY_PASSWORD: &str = "drill.sanity_password";
pub const DRILL_SANITY_ENDPOINT: &str = "target.sanity_endpoint_override";
/// Every drill-only key.
pub const DRILL_KEYS: [&str; 3] = [DRILL_SANITY_USERNAME, DRILL_SANITY_PASSWORD, DRILL_SANITY_ENDPOINT];

/// The resource of the key ARN that stands for "none given" until the drill
/// creates the key (in the target region, owned by the source account, so
/// the settings' key rules hold).
pub const KMS_KEY_TO_BE_CREATED: &str = "key/to-be-created-by-the-drill";

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
fn known_keys() -> impl Iterator<Item = String> {
    keys::ALL
        .iter()
        .map(|k| k.toml.to_owned())
        .chain(DRILL_KEYS.iter().map(|k| (*k).to_owned()))
        .chain(crate::deploy_params::deploy_only_keys())
}

/// The sections every configuration has, with a few of their keys.
const SECTIONS: [(&str, &str); 2] = [
    ("source", "account_id, region, cluster_id"),
    ("target", "account_id, region, engine, instance_class, existing_cluster_id, ..."),
];

/// The `[target]` keys a `[[targets]]` table may hold: every `target.` key.
fn target_table_keys() -> impl Iterator<Item = String> {
    known_keys().filter_map(|k| k.strip_prefix("target.").map(str::to_owned))
}

/// Whether `key` is a field of a `[[targets]]` table (`targets[1].engine`).
fn is_targets_key(key: &str) -> bool {
    let Some(rest) = key.strip_prefix(TARGETS_TABLE).and_then(|r| r.strip_prefix('[')) else {
        return false;
    };
    rest.split_once("].")
        .is_some_and(|(i, field)| i.parse::<usize>().is_ok() && target_table_keys().any(|k| k == field))
}

/// The `[[targets]]` tables, each as the flat keys of a one-target file:
/// everything but the targets, with `target.{field}` = `targets[i].{field}`.
/// None without `[[targets]]`.
fn per_target_values(flat: &BTreeMap<String, String>) -> Vec<(String, BTreeMap<String, String>)> {
    let tables = Origin::Toml(flat.clone()).table_entries(TARGETS_TABLE);
    let shared: BTreeMap<String, String> = flat
        .iter()
        .filter(|(k, _)| !k.starts_with("target.") && !k.starts_with(&format!("{TARGETS_TABLE}[")))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    tables
        .into_iter()
        .map(|(name, fields)| {
            let mut values = shared.clone();
            values.extend(fields.into_iter().map(|(f, v)| (format!("target.{f}"), v)));
            (name, values)
        })
        .collect()
}

/// The target regions in the order of their first target: the `[[targets]]`
/// tables' regions, else `target.region` (a list on the source side).
fn target_regions(flat: &BTreeMap<String, String>) -> Vec<String> {
    let tables = Origin::Toml(flat.clone()).table_entries(TARGETS_TABLE);
    let listed: Vec<String> = if tables.is_empty() {
        flat.get(keys::TARGET_REGION.toml)
            .map(|v| v.split(',').map(|r| r.trim().to_owned()).collect())
            .unwrap_or_default()
    } else {
        tables.into_iter().filter_map(|(_, f)| f.get("region").cloned()).collect()
    };
    let mut regions: Vec<String> = Vec::new();
    for r in listed {
        if !r.is_empty() && !regions.contains(&r) {
            regions.push(r);
        }
    }
    regions
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

    /// [`Self::load`] for a command that serves one target: a file with
    /// many is refused ([`Self::single_target`]).
    pub fn load_one_target(path: &Path, command: &str) -> Result<Self, ConfigErrors> {
        let config = Self::load(path)?;
        config
            .single_target(command)
            .map_err(|e| ConfigErrors { file: path.display().to_string(), errors: vec![e] })?;
        Ok(config)
    }

    /// Validates a configuration text.
    pub fn parse(text: &str) -> Result<Self, Vec<SettingError>> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            vec![SettingError { name: "(syntax)".into(), problem: e.to_string().trim().replace('\n', " ") }]
        })?;
        let mut errors = Vec::new();
        let mut flat = BTreeMap::new();
        flatten("", &table, &mut flat, &mut errors);
        for key in flat.keys() {
            let removed = keys::REMOVED.iter().any(|(k, _)| k.toml == *key);
            if !known_keys().any(|k| k == *key) && !is_pair_key(key) && !is_targets_key(key) && !removed {
                errors.push(SettingError { name: key.clone(), problem: "is not a known setting".into() });
            }
        }
        errors.extend(crate::deploy_params::check_deploy_keys(&flat));
        let values = flat.clone();
        // A drill creates the keys not given: stand-ins that obey the key
        // rules (one per target region without a key), so the settings read
        // as the Lambdas read them.
        let given: Vec<String> = flat
            .get(keys::KMS_KEY_ARN.toml)
            .map(|v| v.split(',').map(|a| a.trim().to_owned()).collect())
            .unwrap_or_default();
        let source_account =
            flat.get(keys::SOURCE_ACCOUNT_ID.toml).cloned().unwrap_or_else(|| "000000000000".into());
        let mut regions = target_regions(&flat);
        if regions.is_empty() {
            regions.push("us-east-1".into());
        }
        let kms_keys_to_create: Vec<Region> = regions
            .iter()
            .filter(|r| {
                !given.iter().any(|arn| {
                    arn.starts_with(&format!("arn:aws:kms:{r}:")) || arn.split(':').nth(3) == Some(r.as_str())
                })
            })
            .filter_map(|r| r.parse::<Region>().ok())
            .collect();
        let stand_ins: Vec<String> = kms_keys_to_create
            .iter()
            .map(|r| {
                format!(
                    "arn:{}:kms:{r}:{source_account}:{KMS_KEY_TO_BE_CREATED}",
                    aurora_dr_core::ids::partition_of(r)
                )
            })
            .collect();
        if !stand_ins.is_empty() {
            let all: Vec<String> =
                given.iter().cloned().chain(stand_ins.iter().cloned()).filter(|a| !a.is_empty()).collect();
            flat.insert(keys::KMS_KEY_ARN.toml.into(), all.join(","));
        }
        let kms_key_given = kms_keys_to_create.is_empty();
        let drill_sanity_endpoint = match flat.remove(DRILL_SANITY_ENDPOINT).map(|v| v.parse::<HostPort>()) {
            None => None,
            Some(Ok(endpoint)) => Some(endpoint),
            Some(Err(e)) => {
                errors.push(SettingError { name: DRILL_SANITY_ENDPOINT.into(), problem: e.to_string() });
                None
            }
        };
        let drill_sanity_login =
            match (flat.remove(DRILL_SANITY_USERNAME), flat.remove(DRILL_SANITY_PASSWORD)) {
                (Some(username), Some(password)) if !username.is_empty() => {
                    Some(SanityLogin { username, password })
                }
                (None, None) => None,
                _ => {
                    errors.push(SettingError {
                        name: DRILL_SANITY_USERNAME.into(),
                        problem: format!("{DRILL_SANITY_USERNAME} and {DRILL_SANITY_PASSWORD} go together"),
                    });
                    None
                }
            };
        let tables = per_target_values(&flat);
        let origin = Origin::Toml(flat);
        let mut reader = Reader::new(&origin);
        let source = SourceSettings::read(&mut reader);
        let mut targets = Vec::new();
        let mut targets_complete = true;
        if tables.is_empty() {
            match TargetSettings::read(&mut reader) {
                Some(t) => targets.push(t),
                None => targets_complete = false,
            }
        } else {
            for (name, values) in tables {
                let origin = Origin::Toml(values);
                let mut one = Reader::new(&origin);
                match TargetSettings::read(&mut one) {
                    Some(t) => targets.push(t),
                    None => targets_complete = false,
                }
                // A problem of this target's `target.` key is told under its table.
                errors.extend(one.into_errors().into_iter().map(|mut e| {
                    if let Some(field) = e.name.strip_prefix("target.") {
                        e.name = format!("{name}.{field}");
                    }
                    e
                }));
            }
        }
        // The stand-in keys' problems come from other keys (region, account), named on their own.
        errors.extend(reader.into_errors().into_iter().filter(|e| {
            kms_key_given || e.name != keys::KMS_KEY_ARN.toml || !e.problem.contains(KMS_KEY_TO_BE_CREATED)
        }));
        // A missing section is one problem, not one "is required" per key of it.
        for (section, some_keys) in SECTIONS {
            let present =
                table.contains_key(section) || (section == "target" && table.contains_key(TARGETS_TABLE));
            if !present {
                let prefix = format!("{section}.");
                errors.retain(|e| !(e.name.starts_with(&prefix) && e.problem.starts_with("is required")));
                errors.push(SettingError {
                    name: format!("[{section}]"),
                    problem: format!("the section is missing (it holds {some_keys})"),
                });
            }
        }
        if let Some(source) = &source {
            for target in &targets {
                // Many clusters: the target side must know where each source cluster goes.
                for id in &source.cluster_ids {
                    if target.pair_for(Some(id.as_str())).is_err() {
                        errors.push(SettingError {
                            name: keys::CLUSTER_PAIRS.toml.into(),
                            problem: format!(
                                "source cluster {id} has no pair: add a [[pairs]] table with source_cluster_id = \"{id}\""
                            ),
                        });
                    }
                }
            }
        }
        // A key can be read by both sides (source.account_id); report it once.
        let mut seen = std::collections::HashSet::new();
        errors.retain(|e| seen.insert(e.to_string()));
        match (source, targets.first().cloned()) {
            (Some(source), Some(target)) if errors.is_empty() && targets_complete => Ok(Self {
                source,
                target,
                targets,
                kms_key_given,
                kms_keys_to_create,
                drill_sanity_login,
                drill_sanity_endpoint,
                values,
            }),
            _ => Err(errors),
        }
    }

    /// Whether this file names more than one target.
    pub fn is_multi_target(&self) -> bool {
        self.targets.len() > 1
    }

    /// This configuration as a one-target file of `target` (one of
    /// [`Self::targets`]): what a command that serves many targets runs per
    /// target.
    pub fn for_target(&self, target: &TargetSettings) -> Self {
        Self { target: target.clone(), targets: vec![target.clone()], ..self.clone() }
    }

    /// Refuses a file with many targets for a command that serves one (a
    /// problem of `[[targets]]`, for the command's exit 2).
    pub fn single_target(&self, command: &str) -> Result<(), SettingError> {
        if !self.is_multi_target() {
            return Ok(());
        }
        Err(SettingError {
            name: TARGETS_TABLE.into(),
            problem: format!(
                "{} targets: `{command}` serves one target; run it with a file of one [target] per DR target \
                 (`validate` and `preflight` check every target)",
                self.targets.len()
            ),
        })
    }
}

impl Config {
    /// What a valid configuration still asks of the operator: opt-in
    /// regions must be enabled in the account that uses them.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut places = vec![("source".to_owned(), &self.source.account_id, &self.source.region)];
        for t in &self.targets {
            places.push(("target".into(), &t.account_id, &t.region));
        }
        for r in &self.source.target_regions {
            places.push(("source (the key and the copies)".into(), &self.source.account_id, &r.region));
        }
        for (what, account, region) in places {
            if aurora_dr_core::ids::is_opt_in_region(region) && seen.insert((account.clone(), region.clone()))
            {
                notes.push(format!(
                    "{region} ({what}) is an opt-in region: it must be enabled in account {account} \
                     (AWS Account Management, \"Enable or disable AWS Regions in your account\")"
                ));
            }
        }
        notes
    }
}

/// Whether `key` is a field of a `[[pairs]]` table (`pairs[0].temp_cluster_id`).
fn is_pair_key(key: &str) -> bool {
    let Some(rest) = key.strip_prefix(keys::CLUSTER_PAIRS.toml).and_then(|r| r.strip_prefix('[')) else {
        return false;
    };
    rest.split_once("].").is_some_and(|(i, field)| {
        i.parse::<usize>().is_ok() && aurora_dr_core::settings::PAIR_FIELDS.contains(&field)
    })
}

/// Flattens `[source] region = ".."` into `source.region` and `[[pairs]]`
/// into `pairs[0].source_cluster_id`, ...; scalars become strings.
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
            toml::Value::Float(f) => {
                out.insert(key, f.to_string());
            }
            toml::Value::Boolean(b) => {
                out.insert(key, b.to_string());
            }
            toml::Value::Array(items) if !items.is_empty() && items.iter().all(toml::Value::is_table) => {
                for (i, item) in items.iter().enumerate() {
                    if let toml::Value::Table(t) = item {
                        flatten(&format!("{key}[{i}]"), t, out, errors);
                    }
                }
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
pub(crate) mod tests {
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
        assert_eq!(
            c.source.kms_key_arn.as_str(),
            "arn:aws:kms:us-west-1:111111111111:key/to-be-created-by-the-drill",
            "a stand-in until the drill creates the key"
        );
        assert_eq!(c.target.existing_cluster_id.as_str(), "orders-dr");
    }

    #[test]
    fn every_settings_key_is_known_to_the_file() {
        // One list (keys::ALL): a key added to the settings is a key of the file.
        for key in keys::ALL {
            assert!(known_keys().any(|k| k == key.toml), "{}", key.toml);
        }
        // A given key is checked as the Lambdas check it.
        let other_region = EXAMPLE.replace(
            "cluster_id = \"orders\"\n",
            "cluster_id = \"orders\"\nkms_key_arn = \"arn:aws:kms:us-west-2:111111111111:key/k\"\n",
        );
        let errors = Config::parse(&other_region).expect_err("key in the source region");
        assert!(
            errors.iter().any(|e| e.name == "source.kms_key_arn" && e.problem.contains("target region")),
            "{errors:?}"
        );
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
    fn retention_and_target_key_are_read_per_side() {
        let key = "arn:aws:kms:us-west-1:222222222222:key/1111aaaa-0000-4000-8000-000000000002";
        let text = EXAMPLE
            .replace("[source]\n", "[source]\nretain_snapshots = 5\nretain_days = 30\n")
            .replace("[target]\n", &format!("[target]\nretain_snapshots = 2\nkms_key_arn = \"{key}\"\n"));
        let c = Config::parse(&text).expect("valid");
        assert_eq!((c.source.retention.snapshots, c.source.retention.days), (5, Some(30)));
        assert_eq!((c.target.retention.snapshots, c.target.retention.days), (2, None));
        assert_eq!(c.target.kms_key_arn.as_ref().map(|k| k.as_str()), Some(key));

        let bad =
            EXAMPLE.replace("[target]\n", "[target]\nretain_snapshots = 0\nkms_key_arn = \"alias/dr\"\n");
        let errors = Config::parse(&bad).expect_err("invalid");
        let names: Vec<&str> = errors.iter().map(|e| e.name.as_str()).collect();
        assert!(
            names.contains(&"target.retain_snapshots") && names.contains(&"target.kms_key_arn"),
            "{names:?}"
        );
    }

    /// `validate` (exit 2) reports a generated name RDS would refuse under
    /// the file's key, with the name's length.
    #[test]
    fn generated_names_over_63_characters_are_named_by_their_file_key() {
        let long = "a-forty-six-character-existing-dr-cluster-name";
        let text = EXAMPLE
            .replace("\"orders-dr\"", &format!("\"{long}\""))
            .replace("[target]\n", "[target]\nfinal_snapshot = true\n");
        let errors = Config::parse(&text).expect_err("too long");
        let found = |len: &str| {
            errors.iter().any(|e| e.name == "target.existing_cluster_id" && e.problem.contains(len))
        };
        assert!(found("65 characters") && found("71 characters"), "{errors:?}");
    }

    #[test]
    fn a_missing_section_is_one_problem() {
        let no_target = EXAMPLE.split("[target]").next().expect("source part").to_owned();
        let errors = Config::parse(&no_target).expect_err("no target");
        let problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            ["[target]: the section is missing (it holds account_id, region, engine, \
            instance_class, existing_cluster_id, ...)"]
        );
        let no_source = format!("[target]{}", EXAMPLE.split("[target]").nth(1).expect("target part"));
        let errors = Config::parse(&no_source).expect_err("no source");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].name, "[source]");
        // A present section still names each missing key.
        let errors =
            Config::parse(&EXAMPLE.replace("engine = \"aurora-postgresql\"\n", "")).expect_err("engine");
        assert_eq!(errors.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), ["target.engine"]);
    }

    #[test]
    fn regions_and_identifiers_follow_the_lambdas_rules() {
        let text = EXAMPLE
            .replace("region = \"us-west-1\"", "region = \"eu-centrel-1\"")
            .replace("\"orders-dr-next\"", "\"Orders-DR-Next\"");
        let errors = Config::parse(&text).expect_err("invalid");
        let problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("target.region: is not an AWS region (did you mean eu-central-1?)")),
            "{problems:#?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with("target.temp_cluster_id: must be lowercase")
                && p.contains("did you mean \"orders-dr-next\"")),
            "{problems:#?}"
        );
        // The Lambdas' reader says the same about the same values.
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in [
            ("TARGET_ACCOUNT_ID", "222222222222"),
            ("TARGET_REGION", "eu-centrel-1"),
            ("SOURCE_ACCOUNT_ID", "111111111111"),
            ("ENGINE", "aurora-postgresql"),
            ("DB_INSTANCE_CLASS", "db.r6g.large"),
            ("EXISTING_CLUSTER_ID", "orders-dr"),
            ("TEMP_CLUSTER_ID", "Orders-DR-Next"),
            ("EXISTING_INSTANCE_ID", "orders-dr-1"),
            ("TEMP_INSTANCE_ID", "orders-dr-next-1"),
        ] {
            env.insert(k.into(), v.into());
        }
        let origin = Origin::Env(env);
        let mut reader = Reader::new(&origin);
        assert!(TargetSettings::read(&mut reader).is_none());
        let env_problems: Vec<String> = reader.into_errors().iter().map(ToString::to_string).collect();
        for (toml, var) in [("target.region", "TARGET_REGION"), ("target.temp_cluster_id", "TEMP_CLUSTER_ID")]
        {
            let from_file = problems.iter().find(|p| p.starts_with(toml)).expect("file problem");
            let from_env = env_problems.iter().find(|p| p.starts_with(var)).expect("env problem");
            assert_eq!(from_file.strip_prefix(toml), from_env.strip_prefix(var), "one rule, two names");
        }
    }

    /// The regions `validate` knows are those of the `aws`, `aws-cn` and
    /// `aws-us-gov` partitions in the endpoints data of the emulator's pinned
    /// botocore (`emulator/requirements.txt`; the environment `make
    /// emulator-env` creates): a new region there fails this test until
    /// `aurora_dr_core::ids::REGIONS` has it.
    #[test]
    fn regions_match_the_pinned_botocore() {
        let lib = aurora_dr_emulator::default_venv_dir().join("lib");
        let endpoints = std::fs::read_dir(&lib)
            .unwrap_or_else(|e| panic!("{}: {e} (run `make emulator-env`)", lib.display()))
            .filter_map(Result::ok)
            .map(|python| python.path().join("site-packages/botocore/data/endpoints.json"))
            .find(|p| p.is_file())
            .expect("botocore's endpoints.json in the emulator's environment");
        let data: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&endpoints).expect("read")).expect("json");
        let mut botocore: Vec<String> = data["partitions"]
            .as_array()
            .expect("partitions")
            .iter()
            .filter(|p| matches!(p["partition"].as_str(), Some("aws" | "aws-cn" | "aws-us-gov")))
            .flat_map(|p| p["regions"].as_object().expect("regions").keys().cloned())
            .collect();
        botocore.sort();
        let mut ours: Vec<String> =
            aurora_dr_core::ids::REGIONS.iter().map(|(r, _)| (*r).to_owned()).collect();
        ours.sort();
        assert_eq!(ours, botocore, "ids::REGIONS against {}", endpoints.display());
    }

    #[test]
    fn syntax_errors_are_named() {
        let errors = Config::parse("[source\nx=").expect_err("syntax");
        assert_eq!(errors[0].name, "(syntax)");
    }

    #[test]
    fn sanity_keys_and_the_drill_login_are_read() {
        let text = format!(
            "{EXAMPLE}sanity_min_rows = [\"orders=10\", \"items=1\"]\nsanity_tls = \"disable\"\n\
             [drill]\nsanity_username = \"dr_probe\"\nsanity_password = \"pw\"\n"
        );
        let c = Config::parse(&text).expect("valid");
        assert_eq!(c.target.sanity.min_rows.len(), 2);
        assert!(c.drill_sanity_endpoint.is_none());
        let login = c.drill_sanity_login.expect("login");
        assert_eq!((login.username.as_str(), login.password.as_str()), ("dr_probe", "pw"));
        assert!(!format!("{login:?}").contains("pw\""), "the password is not printed");
        assert!(Config::parse(EXAMPLE).expect("valid").drill_sanity_login.is_none());

        let with_endpoint =
            EXAMPLE.replace("[target]\n", "[target]\nsanity_endpoint_override = \"127.0.0.1:54321\"\n");
        let c = Config::parse(&with_endpoint).expect("valid");
        assert_eq!(c.drill_sanity_endpoint.map(|e| e.to_string()).as_deref(), Some("127.0.0.1:54321"));
        let bad = EXAMPLE.replace("[target]\n", "[target]\nsanity_endpoint_override = \"localhost\"\n");
        let errors = Config::parse(&bad).expect_err("no port");
        assert!(
            errors
                .iter()
                .any(|e| e.name == "target.sanity_endpoint_override" && e.problem.contains("HOST:PORT")),
            "{errors:?}"
        );

        let half = format!("{EXAMPLE}[drill]\nsanity_username = \"dr_probe\"\n");
        let errors = Config::parse(&half).expect_err("half a login");
        assert!(
            errors.iter().any(|e| e.name == "drill.sanity_username" && e.problem.contains("go together"))
        );
    }

    const BILLING_PAIR: &str = r#"
[[pairs]]
source_cluster_id = "billing"
existing_cluster_id = "billing-dr"
temp_cluster_id = "billing-dr-next"
existing_instance_id = "billing-dr-1"
temp_instance_id = "billing-dr-next-1"
"#;

    #[test]
    fn pairs_add_clusters_to_both_sides() {
        let c = Config::parse(&format!("{EXAMPLE}{BILLING_PAIR}")).expect("valid");
        let sources: Vec<&str> = c.source.cluster_ids.iter().map(|c| c.as_str()).collect();
        assert_eq!(sources, ["orders", "billing"], "the single cluster, then the pairs' sources");
        assert_eq!(c.target.pairs.len(), 2);
        assert_eq!(
            c.target.for_source(Some("billing")).expect("pair").existing_cluster_id.as_str(),
            "billing-dr"
        );
        assert_eq!(
            c.target.for_source(Some("orders")).expect("pair").existing_cluster_id.as_str(),
            "orders-dr"
        );

        // Pairs alone: no single-cluster keys at all.
        let fleet: String = EXAMPLE
            .lines()
            .filter(|l| {
                !l.starts_with("cluster_id") && !l.contains("_cluster_id") && !l.contains("_instance_id")
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let c = Config::parse(&format!("{fleet}{BILLING_PAIR}")).expect("pairs alone");
        assert_eq!(c.source.cluster_id.as_str(), "billing");
        assert_eq!(c.target.existing_cluster_id.as_str(), "billing-dr");
    }

    #[test]
    fn pair_problems_are_named_by_table_and_key() {
        let bad = BILLING_PAIR
            .replace("billing-dr-next\"", "billing--next\"")
            .replace("temp_instance_id", "colour");
        let reused = BILLING_PAIR.replace("billing-dr\"", "orders-dr\"");
        let text = format!("{EXAMPLE}{bad}{reused}{BILLING_PAIR}");
        let errors = Config::parse(&text).expect_err("invalid");
        let problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
        for want in [
            "pairs[0].temp_cluster_id: ",
            "pairs[0].colour: is not a known setting",
            "pairs[0].temp_instance_id: is required",
            "pairs[1].existing_cluster_id: orders-dr is already used by target.existing_cluster_id",
            "pairs[2].source_cluster_id: source cluster billing already has a pair (pairs[1]",
        ] {
            assert!(problems.iter().any(|p| p.starts_with(want)), "{want} not in {problems:#?}");
        }
        // A listed source cluster without a pair.
        let text =
            EXAMPLE.replace("cluster_id = \"orders\"", "cluster_id = \"orders\"\ncluster_ids = [\"ledger\"]");
        let errors = Config::parse(&text).expect_err("no pair");
        assert!(errors.iter().any(|e| e.name == "pairs" && e.problem.contains("ledger")), "{errors:?}");
    }

    /// Two DR targets in two accounts and two regions, sharing the pairs.
    pub const TWO_TARGETS: &str = r#"
[source]
account_id = "111111111111"
region = "us-west-2"
cluster_id = "orders"
[[targets]]
account_id = "222222222222"
region = "us-west-1"
engine = "aurora-postgresql"
instance_class = "db.r6g.large"
existing_cluster_id = "orders-dr"
temp_cluster_id = "orders-dr-next"
existing_instance_id = "orders-dr-1"
temp_instance_id = "orders-dr-next-1"
[[targets]]
account_id = "333333333333"
region = "eu-west-1"
engine = "aurora-postgresql"
instance_class = "db.r6g.xlarge"
existing_cluster_id = "orders-dr"
temp_cluster_id = "orders-dr-next"
existing_instance_id = "orders-dr-1"
temp_instance_id = "orders-dr-next-1"
"#;

    #[test]
    fn targets_tables_are_each_a_target_and_the_source_copies_to_each_region() {
        let c = Config::parse(TWO_TARGETS).expect("valid");
        let targets: Vec<(&str, &str, &str)> = c
            .targets
            .iter()
            .map(|t| (t.account_id.as_str(), t.region.as_str(), t.instance_class.as_str()))
            .collect();
        assert_eq!(
            targets,
            [("222222222222", "us-west-1", "db.r6g.large"), ("333333333333", "eu-west-1", "db.r6g.xlarge")]
        );
        assert_eq!(c.target, c.targets[0]);
        assert!(c.is_multi_target());
        let regions: Vec<&str> = c.source.target_regions.iter().map(|r| r.region.as_str()).collect();
        assert_eq!(regions, ["us-west-1", "eu-west-1"]);
        // No key given: the drill creates one per region.
        assert!(!c.kms_key_given);
        let to_create: Vec<&str> = c.kms_keys_to_create.iter().map(|r| r.as_str()).collect();
        assert_eq!(to_create, ["us-west-1", "eu-west-1"]);
        assert!(
            c.source.target_regions.iter().all(|r| r.kms_key_arn.as_str().ends_with(KMS_KEY_TO_BE_CREATED)
                && r.kms_key_arn.region() == Some(r.region.clone()))
        );

        // One key given: the other region's is still the drill's.
        let eu_key = "arn:aws:kms:eu-west-1:111111111111:key/0f0e0d0c-0000-4000-8000-000000000003";
        let text = TWO_TARGETS.replace(
            "cluster_id = \"orders\"\n",
            &format!("cluster_id = \"orders\"\nkms_key_arn = [\"{eu_key}\"]\n"),
        );
        let c = Config::parse(&text).expect("valid");
        assert_eq!(c.kms_keys_to_create.iter().map(|r| r.as_str()).collect::<Vec<_>>(), ["us-west-1"]);
        assert_eq!(
            c.source.for_region(&"eu-west-1".parse().expect("region")).expect("eu").kms_key_arn.as_str(),
            eu_key
        );

        let err = c.single_target("chaos").expect_err("two targets");
        assert_eq!(err.name, "targets");
        assert!(err.problem.contains("2 targets") && err.problem.contains("`chaos`"), "{err}");
        assert!(Config::parse(EXAMPLE).expect("one").single_target("chaos").is_ok());
    }

    #[test]
    fn targets_problems_are_named_by_table_and_key() {
        let text = TWO_TARGETS
            .replacen("engine = \"aurora-postgresql\"\n", "engine = \"oracle\"\ncolour = \"blue\"\n", 2)
            .replace("region = \"eu-west-1\"", "region = \"eu-west\"");
        let errors = Config::parse(&text).expect_err("invalid");
        let problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
        for want in [
            "targets[0].engine: must be aurora-postgresql or aurora-mysql",
            "targets[1].engine: must be aurora-postgresql or aurora-mysql",
            "targets[0].colour: is not a known setting",
            "targets[1].region: is not an AWS region (did you mean eu-west-1?)",
        ] {
            assert!(problems.iter().any(|p| p.starts_with(want)), "{want} not in {problems:#?}");
        }
        assert!(
            !problems.iter().any(|p| p.starts_with("[target]")),
            "[[targets]] is the target section: {problems:#?}"
        );

        // The same account and region twice would restore over each other.
        let twice = TWO_TARGETS.replace("333333333333", "222222222222").replace("eu-west-1", "us-west-1");
        let errors = Config::parse(&twice).expect_err("twice");
        assert!(
            errors
                .iter()
                .any(|e| e.name == "targets[1]" && e.problem.contains("listed twice (also targets[0])")),
            "{errors:#?}"
        );

        // [target] and [[targets]] together is refused, not merged.
        let both = format!(
            "{EXAMPLE}{}",
            TWO_TARGETS.split("[[targets]]").nth(1).map(|t| format!("[[targets]]{t}")).expect("table")
        );
        let errors = Config::parse(&both).expect_err("both");
        assert!(errors.iter().any(|e| e.name == "targets" && e.problem.contains("together")), "{errors:#?}");
    }

    #[test]
    fn every_target_needs_a_pair_for_every_source_cluster_and_notes_its_region() {
        let text = TWO_TARGETS
            .replace("cluster_id = \"orders\"", "cluster_id = \"orders\"\ncluster_ids = [\"ledger\"]")
            .replace("eu-west-1", "ap-east-1");
        let errors = Config::parse(&text).expect_err("no pair");
        assert!(errors.iter().any(|e| e.name == "pairs" && e.problem.contains("ledger")), "{errors:?}");
        let c = Config::parse(&TWO_TARGETS.replace("eu-west-1", "ap-east-1")).expect("valid");
        let notes = c.notes();
        assert!(
            notes.iter().any(|n| n.contains("ap-east-1 (target)") && n.contains("333333333333")),
            "{notes:#?}"
        );
        assert!(
            notes
                .iter()
                .any(|n| n.contains("ap-east-1 (source (the key and the copies))")
                    && n.contains("111111111111")),
            "{notes:#?}"
        );
    }
}
