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

use aurora_dr_core::probe::HostPort;
use aurora_dr_core::settings::{Key, Origin, Reader, SettingError, SourceSettings, TargetSettings, keys};

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: SourceSettings,
    pub target: TargetSettings,
    /// Whether `source.kms_key_arn` was given. When it was not, `source`
    /// holds [`KMS_KEY_TO_BE_CREATED`] until the drill creates the key (it
    /// never reaches a step).
    pub kms_key_given: bool,
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
        for key in flat.keys() {
            let removed = keys::REMOVED.iter().any(|(k, _)| k.toml == *key);
            if !known_keys().any(|k| k == *key) && !is_pair_key(key) && !removed {
                errors.push(SettingError { name: key.clone(), problem: "is not a known setting".into() });
            }
        }
        errors.extend(crate::deploy_params::check_deploy_keys(&flat));
        let values = flat.clone();
        let kms_key_given = flat.contains_key(keys::KMS_KEY_ARN.toml);
        if !kms_key_given {
            // A drill creates the key: a stand-in that obeys the key rules, so
            // the settings read as the Lambdas read them.
            let text = |k: Key, default: &str| flat.get(k.toml).cloned().unwrap_or_else(|| default.into());
            let stand_in = format!(
                "arn:aws:kms:{}:{}:{KMS_KEY_TO_BE_CREATED}",
                text(keys::TARGET_REGION, "us-east-1"),
                text(keys::SOURCE_ACCOUNT_ID, "000000000000")
            );
            flat.insert(keys::KMS_KEY_ARN.toml.into(), stand_in);
        }
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
        let origin = Origin::Toml(flat);
        let mut reader = Reader::new(&origin);
        let source = SourceSettings::read(&mut reader);
        let target = TargetSettings::read(&mut reader);
        // The stand-in key's problems come from other keys (region, account), named on their own.
        errors.extend(
            reader.into_errors().into_iter().filter(|e| kms_key_given || e.name != keys::KMS_KEY_ARN.toml),
        );
        // A missing section is one problem, not one "is required" per key of it.
        for (section, some_keys) in SECTIONS {
            if !table.contains_key(section) {
                let prefix = format!("{section}.");
                errors.retain(|e| !(e.name.starts_with(&prefix) && e.problem.starts_with("is required")));
                errors.push(SettingError {
                    name: format!("[{section}]"),
                    problem: format!("the section is missing (it holds {some_keys})"),
                });
            }
        }
        if let (Some(source), Some(target)) = (&source, &target) {
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
        // A key can be read by both sides (source.account_id); report it once.
        let mut seen = std::collections::HashSet::new();
        errors.retain(|e| seen.insert(e.to_string()));
        match (source, target) {
            (Some(source), Some(target)) if errors.is_empty() => {
                Ok(Self { source, target, kms_key_given, drill_sanity_login, drill_sanity_endpoint, values })
            }
            _ => Err(errors),
        }
    }
}

impl Config {
    /// What a valid configuration still asks of the operator: opt-in
    /// regions must be enabled in the account that uses them.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (what, account, region) in [
            ("source", &self.source.account_id, &self.source.region),
            ("target", &self.target.account_id, &self.target.region),
            ("source (the key and the copies)", &self.source.account_id, &self.target.region),
        ] {
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
}
