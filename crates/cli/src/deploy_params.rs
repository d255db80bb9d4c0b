//! `aurora-dr deploy-params`: the stacks' parameters from the operator's one
//! configuration file.
//!
//! `tools/rehearse/params.toml` is the one mapping from the configuration
//! (the drill's TOML) to the parameters of the three stacks (`kms`,
//! `source`, `target`); it is embedded here at build time, so the deploy
//! rehearsal, `stacks.py check-samconfig` and this command read the same
//! file. For one stack the command prints the value of
//! `sam deploy --parameter-overrides`; with `--samconfig` it prints a whole
//! `samconfig.toml` (all three config envs), and without `--config` the
//! repository's own, whose values are `REPLACE_ME_...` placeholders naming
//! the configuration key (or stack output) each comes from (`make
//! samconfig`; a test fails while the file differs).
//!
//! Parameters that come from an earlier stack (the kms stack's `KeyArn`, the
//! source stack's `NotificationTopicArn`) are read from CloudFormation
//! (`DescribeStacks`) with `--stack-outputs-from-aws` (or `--endpoint`),
//! unless the configuration sets them (`source.kms_key_arn`,
//! `target.source_topic_arn`): nobody copies stack outputs into a file.
//!
//! Many DR targets (`[[targets]]`): one kms stack per target region (its
//! key policy admits every target account there), one source stack whose
//! DestinationAccountNumber and TargetAWSRegion list every target in the
//! file's order and whose KMSKey lists each region's key, and one target
//! stack per target (its SourceKMSKeyArn is its region's key). Each is a
//! [`Planned`] stack named by its config env: `kms-N` (the N-th target
//! region), `source`, `target-N` (target N, from 1): `--env target-2` prints
//! one, `--env target` every one (a line each), `--samconfig` all of them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use aurora_dr_core::clients::AwsContext;
use aurora_dr_core::ids::Region;
use aurora_dr_core::settings::{SettingError, keys};

use crate::accounts::{Account, AccountArgs};
use crate::config::Config;

/// The one mapping, as the repository holds it.
pub const MAPPING: &str = include_str!("../../../tools/rehearse/params.toml");

/// The config envs (stacks), in the order they are deployed.
pub const ENVS: [&str; 3] = ["kms", "source", "target"];

#[derive(Debug, clap::Args)]
pub struct DeployParamsArgs {
    /// The TOML configuration (see examples/drill.toml). Without it,
    /// `--samconfig` prints the repository's placeholder samconfig.toml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The stack: kms (source account, target region), source or target.
    /// Many DR targets (`[[targets]]`): target-N is target N's stack (from
    /// 1, in the file's order), kms-N the key stack of the N-th target
    /// region (the config envs `--samconfig` writes); kms or target alone
    /// prints every one, a line each.
    #[arg(long, value_parser = parse_env, required_unless_present = "samconfig", conflicts_with = "samconfig")]
    pub env: Option<String>,
    /// Print a whole samconfig.toml (all three stacks) instead of one stack's overrides.
    #[arg(long)]
    pub samconfig: bool,
    /// Read the earlier stacks' outputs (KeyArn, NotificationTopicArn) from
    /// CloudFormation with the operator's credentials of the source account
    /// (both stacks live there); `--endpoint` reads them from an emulator.
    #[arg(long)]
    pub stack_outputs_from_aws: bool,
    #[command(flatten)]
    pub accounts: AccountArgs,
}

/// Where one parameter's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// A configuration key, with its default, or passed only when set.
    Key { key: String, default: Option<String>, optional: bool },
    /// The same for every configuration.
    Value(String),
    /// An output of a stack deployed before (`env`, output name), unless the
    /// configuration sets `key`.
    Output { env: String, output: String, key: Option<String> },
}

/// One stack of the mapping.
#[derive(Debug, Clone)]
pub struct Stack {
    pub env: String,
    pub template: String,
    /// Configuration keys of the account and region it lives in.
    pub account_key: String,
    pub region_key: String,
    /// Parameters in the mapping's order.
    pub parameters: Vec<(String, Rule)>,
}

impl Stack {
    /// The stack's name, as samconfig.toml sets it.
    pub fn name(&self) -> String {
        format!("aurora-dr-{}", self.env)
    }
}

/// The parsed mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub stacks: Vec<Stack>,
}

impl Mapping {
    /// The embedded mapping. It is part of the binary, so a mapping that does
    /// not parse is a build defect that the tests catch.
    pub fn embedded() -> &'static Self {
        static EMBEDDED: std::sync::LazyLock<Mapping> = std::sync::LazyLock::new(|| {
            Mapping::parse(MAPPING).unwrap_or_else(|e| panic!("tools/rehearse/params.toml: {e}"))
        });
        &EMBEDDED
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        let mut stacks = Vec::new();
        for env in ENVS {
            let spec = table.get(env).and_then(toml::Value::as_table).ok_or(format!("no [{env}]"))?;
            let text_of = |k: &str| {
                spec.get(k).and_then(toml::Value::as_str).map(str::to_owned).ok_or(format!("[{env}] {k}"))
            };
            let params = spec
                .get("parameters")
                .and_then(toml::Value::as_table)
                .ok_or(format!("no [{env}.parameters]"))?;
            // toml tables are sorted; the file's order is the order of the output.
            let section = text.find(&format!("[{env}.parameters]")).unwrap_or(0);
            let mut parameters: Vec<(usize, String, Rule)> = Vec::new();
            for (name, value) in params {
                let at = text[section..].find(&format!("\n{name} =")).map_or(usize::MAX, |i| i + section);
                parameters.push((at, name.clone(), rule(value).map_err(|e| format!("[{env}] {name}: {e}"))?));
            }
            parameters.sort_by_key(|(at, _, _)| *at);
            stacks.push(Stack {
                env: env.to_owned(),
                template: text_of("template")?,
                account_key: text_of("account")?,
                region_key: text_of("region")?,
                parameters: parameters.into_iter().map(|(_, n, r)| (n, r)).collect(),
            });
        }
        Ok(Self { stacks })
    }

    pub fn stack(&self, env: &str) -> Option<&Stack> {
        self.stacks.iter().find(|s| s.env == env)
    }

    /// Every configuration key the mapping reads.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.stacks.iter().flat_map(|s| {
            [s.account_key.as_str(), s.region_key.as_str()].into_iter().chain(s.parameters.iter().filter_map(
                |(_, r)| match r {
                    Rule::Key { key, .. } => Some(key.as_str()),
                    Rule::Output { key, .. } => key.as_deref(),
                    Rule::Value(_) => None,
                },
            ))
        })
    }
}

fn rule(value: &toml::Value) -> Result<Rule, String> {
    let field = |t: &toml::Table, k: &str| t.get(k).and_then(toml::Value::as_str).map(str::to_owned);
    match value {
        toml::Value::String(key) => Ok(Rule::Key { key: key.clone(), default: None, optional: false }),
        toml::Value::Table(t) => {
            if let Some(v) = field(t, "value") {
                Ok(Rule::Value(v))
            } else if let Some(o) = field(t, "output") {
                let (env, output) = o.split_once('.').ok_or("output must be ENV.Output")?;
                Ok(Rule::Output { env: env.into(), output: output.into(), key: field(t, "key") })
            } else if let Some(key) = field(t, "key") {
                let optional = t.get("optional").and_then(toml::Value::as_bool).unwrap_or(false);
                Ok(Rule::Key { key, default: field(t, "default"), optional })
            } else {
                Err("needs key, value or output".into())
            }
        }
        _ => Err("must be a key or a table".into()),
    }
}

/// The keys the mapping reads that are not Lambda settings (the schedule,
/// the alarm e-mail): configuration keys of their own.
pub fn deploy_only_keys() -> impl Iterator<Item = String> {
    let keys: Vec<String> = Mapping::embedded()
        .keys()
        .filter(|k| !keys::ALL.iter().any(|s| s.toml == *k))
        .map(str::to_owned)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    keys.into_iter()
}

/// The rules of the deployment-only keys, as the template's parameters
/// state them (`ScheduleExpression`, `RestoreTestSchedule`, `ScheduleState`,
/// `AlarmEmail`).
pub fn check_deploy_keys(values: &BTreeMap<String, String>) -> Vec<SettingError> {
    let mut errors = Vec::new();
    let mut problem = |name: &str, problem: String| {
        errors.push(SettingError { name: name.to_owned(), problem });
    };
    for key in ["source.schedule", "target.restore_test_schedule"] {
        if let Some(v) = values.get(key) {
            let ok = (v.starts_with("rate(") || v.starts_with("cron(")) && v.ends_with(')') && v.len() > 6;
            if !ok {
                problem(
                    key,
                    format!(
                        "must be an EventBridge schedule such as rate(6 hours) or cron(0 3 * * ? *) (got {v:?})"
                    ),
                );
            }
        }
    }
    if let Some(v) = values.get("source.schedule_state")
        && !matches!(v.as_str(), "ENABLED" | "DISABLED")
    {
        problem("source.schedule_state", format!("must be ENABLED or DISABLED (got {v:?})"));
    }
    for key in ["source.alarm_email", "target.alarm_email"] {
        if let Some(v) = values.get(key) {
            let ok = v.split_once('@').is_some_and(|(user, domain)| {
                !user.is_empty() && domain.contains('.') && !v.chars().any(char::is_whitespace)
            });
            if !ok {
                problem(key, format!("must be an e-mail address (got {v:?})"));
            }
        }
    }
    errors
}

/// The outputs of the stacks deployed before, by env (`kms` -> `KeyArn`).
pub type Outputs = BTreeMap<String, BTreeMap<String, String>>;

/// A stack's region and its parameters (name, value) in the mapping's order.
pub type Resolved = (String, Vec<(String, String)>);

/// How a value that is not known is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// As `REPLACE_ME_...` naming where it comes from (samconfig.toml).
    Placeholder,
    /// As a problem (a stack's overrides, ready to deploy).
    Error,
}

fn key_placeholder(key: &str) -> String {
    format!("REPLACE_ME_{}", key.replace('.', "_"))
}

fn output_placeholder(env: &str, output: &str) -> String {
    format!("REPLACE_ME_{output}_output_of_aurora-dr-{env}")
}

/// One stack's region and parameter values. `values`: the configuration's
/// (`None`: the placeholder file).
fn resolve(
    stack: &Stack,
    values: Option<&BTreeMap<String, String>>,
    outputs: &Outputs,
    missing: Missing,
) -> Result<Resolved, Vec<String>> {
    let mut problems = Vec::new();
    let value = |key: &str| values.and_then(|v| v.get(key)).filter(|v| !v.is_empty()).cloned();
    let region = match value(&stack.region_key) {
        Some(r) => r,
        None if values.is_none() => key_placeholder(&stack.region_key),
        None => {
            problems.push(format!("{} is not set (the region of stack {})", stack.region_key, stack.name()));
            String::new()
        }
    };
    let mut params = Vec::new();
    for (name, rule) in &stack.parameters {
        let v = match rule {
            Rule::Value(v) => Some(v.clone()),
            Rule::Key { key, default, optional } => match (value(key), values) {
                (Some(v), _) => Some(v),
                (None, _) if default.is_some() => default.clone(),
                (None, _) if *optional => None,
                (None, None) => Some(key_placeholder(key)),
                (None, Some(_)) => {
                    problems.push(format!("parameter {name} needs {key} in the configuration"));
                    None
                }
            },
            Rule::Output { env, output, key } => {
                match (key.as_deref().and_then(value), outputs.get(env).and_then(|o| o.get(output))) {
                    (Some(v), _) => Some(v),
                    (None, Some(v)) => Some(v.clone()),
                    (None, None) if missing == Missing::Placeholder => Some(output_placeholder(env, output)),
                    (None, None) => {
                        problems.push(format!(
                            "parameter {name} is the {output} output of stack aurora-dr-{env}: pass \
                             --stack-outputs-from-aws (that stack must be deployed){}",
                            key.as_deref().map(|k| format!(", or set {k}")).unwrap_or_default()
                        ));
                        None
                    }
                }
            }
        };
        if let Some(v) = v {
            params.push((name.clone(), v));
        }
    }
    if problems.is_empty() { Ok((region, params)) } else { Err(problems) }
}

/// `--env`: a stack of the mapping, or kms-N / target-N (N from 1).
fn parse_env(s: &str) -> Result<String, String> {
    let (env, n) = match s.split_once('-') {
        Some((env, n)) => (env, Some(n)),
        None => (s, None),
    };
    let numbered = matches!(env, "kms" | "target");
    match n {
        None if ENVS.contains(&env) => Ok(s.to_owned()),
        Some(n) if numbered && n.parse::<usize>().is_ok_and(|n| n >= 1) => Ok(s.to_owned()),
        _ => Err(format!("{s}: must be kms, source or target, or kms-N / target-N with N from 1")),
    }
}

/// One stack to deploy: its samconfig config env, the mapping's stack, the
/// configuration values it is resolved from (`None`: placeholders) and the
/// stack outputs it sees.
#[derive(Debug, Clone)]
pub struct Planned<'a> {
    pub config_env: String,
    pub stack: &'a Stack,
    values: Option<BTreeMap<String, String>>,
    outputs: Outputs,
    /// What the stack serves, for the operator (`target 2: 333333333333 eu-west-1`).
    pub serves: String,
}

impl Planned<'_> {
    /// Region and parameters; `missing` as in [`resolve`].
    fn resolve(&self, missing: Missing) -> Result<Resolved, Vec<String>> {
        resolve(self.stack, self.values.as_ref(), &self.outputs, missing)
    }
}

/// The `[[targets]]` tables of a flat configuration, each as its fields
/// (`targets[1].region` -> `region`), in index order. Empty without them.
fn target_tables(values: &BTreeMap<String, String>) -> Vec<BTreeMap<String, String>> {
    let mut tables: BTreeMap<usize, BTreeMap<String, String>> = BTreeMap::new();
    for (key, value) in values {
        let Some(rest) = key.strip_prefix("targets[") else { continue };
        if let Some((index, field)) = rest.split_once("].")
            && let Ok(index) = index.parse::<usize>()
        {
            tables.entry(index).or_default().insert(field.to_owned(), value.clone());
        }
    }
    tables.into_values().collect()
}

/// The key of `region` among `source.kms_key_arn`'s (a key ARN's fourth field).
fn key_in_region<'a>(keys: &'a str, region: &str) -> Option<&'a str> {
    keys.split(',').map(str::trim).find(|k| k.split(':').nth(3) == Some(region))
}

/// Every stack of a deployment, in the order they are deployed: one of each
/// for one target; for `[[targets]]` a kms stack per target region, the
/// source stack and a target stack per target. `outputs` holds the earlier
/// stacks' outputs by config env (`kms-2`, `source`; `kms` for one target).
pub fn plan<'a>(
    mapping: &'a Mapping,
    values: Option<&BTreeMap<String, String>>,
    outputs: &Outputs,
) -> Result<Vec<Planned<'a>>, String> {
    let stack = |env: &str| mapping.stack(env).ok_or(format!("no stack {env} in the mapping"));
    let tables = values.map(target_tables).unwrap_or_default();
    if tables.is_empty() {
        return ENVS
            .iter()
            .map(|env| {
                Ok(Planned {
                    config_env: (*env).to_owned(),
                    stack: stack(env)?,
                    values: values.cloned(),
                    outputs: outputs.clone(),
                    serves: String::new(),
                })
            })
            .collect();
    }
    let flat = values.cloned().unwrap_or_default();
    let shared: BTreeMap<String, String> = flat
        .iter()
        .filter(|(k, _)| !k.starts_with("targets[") && !k.starts_with("target."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let field = |t: &BTreeMap<String, String>, f: &str| t.get(f).cloned().unwrap_or_default();
    let mut regions: Vec<String> = Vec::new();
    for t in &tables {
        let r = field(t, "region");
        if !regions.contains(&r) {
            regions.push(r);
        }
    }
    let given_keys = flat.get("source.kms_key_arn").cloned().unwrap_or_default();
    // A region's key: given in the configuration, else its kms stack's output.
    let key_of = |j: usize, region: &str| -> Option<String> {
        key_in_region(&given_keys, region)
            .map(str::to_owned)
            .or_else(|| outputs.get(&format!("kms-{}", j + 1)).and_then(|o| o.get("KeyArn")).cloned())
    };
    let with_key = |outputs: &mut Outputs, key: Option<String>| match key {
        Some(k) => {
            outputs.entry("kms".into()).or_default().insert("KeyArn".into(), k);
        }
        None => {
            outputs.remove("kms");
        }
    };
    let mut planned = Vec::new();
    for (j, region) in regions.iter().enumerate() {
        let accounts: Vec<String> =
            tables.iter().filter(|t| field(t, "region") == *region).map(|t| field(t, "account_id")).collect();
        let mut v = shared.clone();
        v.insert("target.region".into(), region.clone());
        v.insert("target.account_id".into(), accounts.join(","));
        planned.push(Planned {
            config_env: format!("kms-{}", j + 1),
            stack: stack("kms")?,
            values: Some(v),
            outputs: Outputs::new(),
            serves: format!("key of target region {region} for {}", accounts.join(", ")),
        });
    }
    let mut v = shared.clone();
    v.insert(
        "target.account_id".into(),
        tables.iter().map(|t| field(t, "account_id")).collect::<Vec<_>>().join(","),
    );
    v.insert("target.region".into(), tables.iter().map(|t| field(t, "region")).collect::<Vec<_>>().join(","));
    v.remove("source.kms_key_arn");
    let mut source_outputs = outputs.clone();
    let keys: Option<Vec<String>> = regions.iter().enumerate().map(|(j, r)| key_of(j, r)).collect();
    with_key(&mut source_outputs, keys.map(|k| k.join(",")));
    planned.push(Planned {
        config_env: "source".into(),
        stack: stack("source")?,
        values: Some(v),
        outputs: source_outputs,
        serves: format!("{} targets", tables.len()),
    });
    for (i, t) in tables.iter().enumerate() {
        let mut v = shared.clone();
        v.remove("source.kms_key_arn");
        v.extend(t.iter().map(|(f, value)| (format!("target.{f}"), value.clone())));
        let region = field(t, "region");
        let j = regions.iter().position(|r| *r == region).unwrap_or_default();
        let mut target_outputs = outputs.clone();
        with_key(&mut target_outputs, key_of(j, &region));
        planned.push(Planned {
            config_env: format!("target-{}", i + 1),
            stack: stack("target")?,
            values: Some(v),
            outputs: target_outputs,
            serves: format!("target {}: {} {region}", i + 1, field(t, "account_id")),
        });
    }
    Ok(planned)
}

/// `Name=value` as `sam deploy --parameter-overrides` reads it: a value with
/// a space, a quote or nothing at all is double-quoted, `"` escaped (SAM
/// CLI's CfnParameterOverridesType splits on unquoted spaces).
pub fn override_item(name: &str, value: &str) -> String {
    if value.is_empty() || value.contains([' ', '"', '\'', '\\', '\t']) {
        format!("{name}=\"{}\"", value.replace('"', "\\\""))
    } else {
        format!("{name}={value}")
    }
}

/// The value of `--parameter-overrides` for one stack.
pub fn overrides(
    mapping: &Mapping,
    env: &str,
    config: &Config,
    outputs: &Outputs,
) -> Result<Resolved, Vec<String>> {
    let stack = mapping.stack(env).ok_or_else(|| vec![format!("no stack {env}")])?;
    resolve(stack, Some(&config.values), outputs, Missing::Error)
}

/// A samconfig.toml for every stack of a deployment: from a configuration,
/// or (`None`) the repository's, with placeholders, which also shows a
/// deployment with two DR targets (config envs `two-targets-...`).
pub fn samconfig(mapping: &Mapping, values: Option<&BTreeMap<String, String>>, outputs: &Outputs) -> String {
    let mut out = String::new();
    out.push_str(SAMCONFIG_HEAD);
    let planned =
        plan(mapping, values, outputs).unwrap_or_else(|e| panic!("tools/rehearse/params.toml: {e}"));
    for p in &planned {
        samconfig_env(&mut out, p, "");
    }
    if values.is_none() {
        out.push_str(TWO_TARGETS_HEAD);
        let example = two_targets_placeholders(mapping);
        let planned = plan(mapping, Some(&example), outputs)
            .unwrap_or_else(|e| panic!("tools/rehearse/params.toml: {e}"));
        for p in &planned {
            samconfig_env(&mut out, p, "two-targets-");
        }
    }
    out
}

/// A configuration of two `[[targets]]` whose every required value is its
/// placeholder (`REPLACE_ME_targets_1_account_id`): the repository's
/// two-target example.
fn two_targets_placeholders(mapping: &Mapping) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    for stack in &mapping.stacks {
        let required = stack.parameters.iter().filter_map(|(_, r)| match r {
            Rule::Key { key, default: None, optional: false } => Some(key.as_str()),
            _ => None,
        });
        for key in [stack.account_key.as_str(), stack.region_key.as_str()].into_iter().chain(required) {
            match key.strip_prefix("target.") {
                Some(field) => {
                    for i in 0..2 {
                        values.insert(
                            format!("targets[{i}].{field}"),
                            format!("REPLACE_ME_targets_{i}_{field}"),
                        );
                    }
                }
                None => {
                    values.insert(key.to_owned(), key_placeholder(key));
                }
            }
        }
    }
    values
}

fn samconfig_env(out: &mut String, p: &Planned<'_>, prefix: &str) {
    let stack = p.stack;
    // Placeholders never fail; a configuration's gaps become placeholders too.
    let (region, params) = p.resolve(Missing::Placeholder).unwrap_or_else(|_| {
        resolve(stack, None, &p.outputs, Missing::Placeholder).unwrap_or_else(|_| (String::new(), Vec::new()))
    });
    let where_ = match stack.env.as_str() {
        "kms" => "Plain CloudFormation (no build): the source account's key in the TARGET region.",
        "source" => "Source account, source region: schedule, source state machine, topics.",
        _ => "Target account, target region: subscription, target state machine.",
    };
    let serves = if p.serves.is_empty() { String::new() } else { format!("\n# {}", p.serves) };
    let title = format!("{prefix}{}", p.config_env);
    out.push_str(&format!(
        "\n# {:-<71}\n# {where_}{serves}\n[{title}.deploy.parameters]\n",
        format!("{title} ")
    ));
    if stack.template != "template.yaml" {
        out.push_str(&format!("template_file = \"{}\"\n", stack.template));
    }
    out.push_str(&format!("stack_name = \"{}\"\n", stack.name()));
    out.push_str(&format!("region = \"{region}\"\n"));
    if stack.template == "template.yaml" {
        out.push_str(&format!("resolve_s3 = true\ns3_prefix = \"{}\"\n", stack.name()));
    }
    out.push_str(
        "capabilities = \"CAPABILITY_IAM\"\nconfirm_changeset = true\nfail_on_empty_changeset = false\n",
    );
    out.push_str("parameter_overrides = [\n");
    for (name, value) in &params {
        out.push_str(&format!("    {},\n", toml_string(&override_item(name, value))));
    }
    for (name, rule) in &stack.parameters {
        if let Rule::Key { key, optional: true, .. } = rule
            && !params.iter().any(|(n, _)| n == name)
        {
            out.push_str(&format!("    # Optional: {name} from {key}\n"));
        }
    }
    out.push_str("]\n");
}

const TWO_TARGETS_HEAD: &str = "
# ======================================================================
# Two DR targets (`[[targets]]` in the configuration; docs/deploy.md,
# \"Adding a target\"): a kms stack per target region, one source stack
# whose DestinationAccountNumber and TargetAWSRegion list both targets in
# the same order and whose KMSKey lists each region's key, and a target
# stack per target. `aurora-dr deploy-params --config FILE --samconfig`
# writes these envs (without the two-targets- prefix) for your file.
";

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

const SAMCONFIG_HEAD: &str = "\
# Generated by `aurora-dr deploy-params --samconfig` from tools/rehearse/params.toml
# (`make samconfig`); do not edit: `make test-rust` fails while it differs.
# Every REPLACE_ME_... names the configuration key (or the earlier stack's
# output) the value comes from; CloudFormation rejects a leftover placeholder
# with the parameter's rule, before creating anything.
#
# Do not fill it in by hand: write your configuration (examples/drill.toml's
# keys, one file for both sides), then per stack, in this order
# (docs/runbook.md):
#   sam deploy --config-env kms    --region R --parameter-overrides \"$(aurora-dr deploy-params --config FILE --env kms)\"
#   sam build && sam deploy --config-env source --region R --parameter-overrides \"$(aurora-dr deploy-params --config FILE --env source --stack-outputs-from-aws)\"
#   sam build && sam deploy --config-env target --region R --parameter-overrides \"$(aurora-dr deploy-params --config FILE --env target --stack-outputs-from-aws)\"
# or `aurora-dr deploy-params --config FILE --samconfig --stack-outputs-from-aws > samconfig.local.toml`
# and `sam deploy --config-file samconfig.local.toml --config-env ENV`.
# The schedule ships DISABLED (source.schedule_state): enable it after a
# manual run has restored the DR cluster.
version = 0.1

[default.build.parameters]
# No build cache: CodeUri is the repository root, so SAM would hash all of
# target/ on every build. cargo's own incremental build is the cache here
# (SAM's Rust builder runs `cargo lambda build` in the source tree).
cached = false
parallel = false

[default.validate.parameters]
lint = true
";

/// Reads `env`'s stack outputs from CloudFormation. `ctx`: credentials of
/// the stack's account, in its region.
pub async fn stack_outputs(ctx: &AwsContext, stack_name: &str) -> Result<BTreeMap<String, String>, String> {
    let cfn = aws_sdk_cloudformation::Client::new(ctx.sdk_config());
    let out = cfn.describe_stacks().stack_name(stack_name).send().await.map_err(|e| {
        let e = aws_sdk_cloudformation::error::DisplayErrorContext(e);
        format!("DescribeStacks {stack_name} in {}: {e}", ctx.region().unwrap_or("?"))
    })?;
    let stack = out.stacks().first().ok_or(format!("stack {stack_name} does not exist"))?;
    Ok(stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect())
}

/// The outputs of the earlier stacks (every kms stack and the source stack;
/// only those `env` needs unless `--samconfig`), read from CloudFormation.
/// Both live in the source account; a kms stack in its target region.
pub async fn fetch_outputs(
    args: &DeployParamsArgs,
    mapping: &Mapping,
    config: &Config,
) -> Result<Outputs, String> {
    let wanted: Vec<&str> = match args.env.as_deref().map(|e| e.split_once('-').map_or(e, |(kind, _)| kind)) {
        Some(env) => mapping
            .stack(env)
            .map(|s| {
                s.parameters
                    .iter()
                    .filter_map(|(_, r)| match r {
                        Rule::Output { env, .. } => Some(env.as_str()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        None => vec!["kms", "source"],
    };
    let planned = plan(mapping, Some(&config.values), &Outputs::new())?;
    let mut outputs = Outputs::new();
    for p in planned.iter().filter(|p| wanted.contains(&p.stack.env.as_str())) {
        let region = match p.stack.env.as_str() {
            "source" => config.source.region.clone(),
            _ => p
                .values
                .as_ref()
                .and_then(|v| v.get(&p.stack.region_key))
                .and_then(|r| r.parse::<Region>().ok())
                .ok_or(format!("stack {} ({}) has no valid region", p.stack.name(), p.config_env))?,
        };
        let ctx = args.accounts.context(Account::Source, &config.source.account_id, &region).await;
        match stack_outputs(&ctx, &p.stack.name()).await {
            Ok(o) => {
                outputs.insert(p.config_env.clone(), o);
            }
            // In a samconfig, a stack not deployed yet leaves its placeholders.
            Err(e) if args.samconfig => eprintln!("deploy-params: {e}; its outputs stay placeholders"),
            Err(e) => return Err(e),
        }
    }
    Ok(outputs)
}

pub async fn run(args: DeployParamsArgs) -> ExitCode {
    let mapping = Mapping::embedded();
    let Some(path) = &args.config else {
        if args.samconfig {
            print!("{}", samconfig(mapping, None, &Outputs::new()));
            return ExitCode::SUCCESS;
        }
        eprintln!("deploy-params: --env needs --config FILE");
        return ExitCode::from(2);
    };
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(2);
        }
    };
    let outputs = if args.stack_outputs_from_aws || args.accounts.endpoint.is_some() {
        match fetch_outputs(&args, mapping, &config).await {
            Ok(o) => o,
            Err(e) => {
                eprintln!("deploy-params: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        Outputs::new()
    };
    if args.samconfig {
        print!("{}", samconfig(mapping, Some(&config.values), &outputs));
        return ExitCode::SUCCESS;
    }
    let chosen_env = args.env.as_deref().unwrap_or("kms");
    let env = chosen_env.split_once('-').map_or(chosen_env, |(e, _)| e);
    let planned = match plan(mapping, Some(&config.values), &outputs) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("deploy-params: {e}");
            return ExitCode::FAILURE;
        }
    };
    let chosen = match select(&planned, chosen_env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("deploy-params: {e}");
            return ExitCode::from(2);
        }
    };
    let mut failed = false;
    for p in chosen {
        match p.resolve(Missing::Error) {
            Ok((region, params)) => {
                let line: Vec<String> = params.iter().map(|(n, v)| override_item(n, v)).collect();
                println!("{}", line.join(" "));
                let account = p.values.as_ref().and_then(|v| v.get(&p.stack.account_key)).cloned();
                let serves = if p.serves.is_empty() { String::new() } else { format!(" ({})", p.serves) };
                eprintln!(
                    "# stack {}{serves}: account {}, region {region}; deploy it with\n#   sam deploy \
                     --config-env {env} --region {region} --parameter-overrides \"$(aurora-dr deploy-params --config \
                     {} --env {}{})\"",
                    p.stack.name(),
                    account.unwrap_or_default(),
                    path.display(),
                    p.config_env,
                    if env == "kms" { "" } else { " --stack-outputs-from-aws" }
                );
            }
            Err(problems) => {
                eprintln!("deploy-params: stack {} ({}):", p.stack.name(), p.config_env);
                for problem in problems {
                    eprintln!("  {problem}");
                }
                failed = true;
            }
        }
    }
    if failed { ExitCode::from(2) } else { ExitCode::SUCCESS }
}

/// The planned stacks `--env` names: kms, source or target (every one of
/// them), or kms-N / target-N (one; for one target, kms-1 and target-1 are
/// kms and target).
pub fn select<'p, 'a>(planned: &'p [Planned<'a>], env: &str) -> Result<Vec<&'p Planned<'a>>, String> {
    let (kind, n) = env.split_once('-').map_or((env, None), |(k, n)| (k, Some(n)));
    let of_kind: Vec<&Planned<'a>> = planned.iter().filter(|p| p.stack.env == kind).collect();
    let Some(n) = n else { return Ok(of_kind) };
    if of_kind.len() == 1 && of_kind[0].config_env == kind && n == "1" {
        return Ok(of_kind);
    }
    let chosen: Vec<&Planned<'a>> = of_kind.iter().copied().filter(|p| p.config_env == env).collect();
    if chosen.is_empty() {
        let names: Vec<&str> = of_kind.iter().map(|p| p.config_env.as_str()).collect();
        return Err(format!("--env {env}: this configuration's {kind} stacks are {}", names.join(", ")));
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../examples/drill.toml");
    const KEY: &str = "arn:aws:kms:us-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const TOPIC: &str = "arn:aws:sns:us-west-2:111111111111:aurora-dr-source-NotificationTopic";

    fn outputs() -> Outputs {
        let mut o = Outputs::new();
        o.entry("kms".into()).or_default().insert("KeyArn".into(), KEY.into());
        o.entry("source".into()).or_default().insert("NotificationTopicArn".into(), TOPIC.into());
        o
    }

    fn parsed(text: &str) -> Config {
        Config::parse(text).unwrap_or_else(|e| panic!("{e:?}"))
    }

    /// `parameter_overrides` of one config env of a samconfig text, as SAM
    /// CLI reads the list: `Name=value`, a value in double quotes unquoted.
    fn samconfig_params(text: &str, env: &str) -> (String, Vec<(String, String)>) {
        let table: toml::Table = text.parse().expect("samconfig parses");
        let deploy = &table[env]["deploy"]["parameters"];
        let region = deploy["region"].as_str().expect("region").to_owned();
        let params = deploy["parameter_overrides"]
            .as_array()
            .expect("list")
            .iter()
            .map(|item| {
                let (name, value) = item.as_str().expect("string").split_once('=').expect("Name=value");
                let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                    Some(quoted) => quoted.replace("\\\"", "\""),
                    None => value.to_owned(),
                };
                (name.to_owned(), value)
            })
            .collect();
        (region, params)
    }

    #[test]
    fn the_repository_samconfig_is_the_generated_one() {
        let generated = samconfig(Mapping::embedded(), None, &Outputs::new());
        let tracked = include_str!("../../../samconfig.toml");
        assert!(
            generated == tracked,
            "samconfig.toml differs from `aurora-dr deploy-params --samconfig` (run `make samconfig`):\n{generated}"
        );
        // Every mapped parameter is there, as its placeholder or fixed value;
        // the schedule ships disabled.
        for stack in &Mapping::embedded().stacks {
            let (region, params) = samconfig_params(tracked, &stack.env);
            assert_eq!(region, key_placeholder(&stack.region_key));
            let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
            for (name, rule) in &stack.parameters {
                let optional = matches!(rule, Rule::Key { optional: true, default: None, .. });
                assert_eq!(names.contains(&name.as_str()), !optional, "[{}] {name}", stack.env);
            }
        }
        let (_, source) = samconfig_params(tracked, "source");
        assert!(source.contains(&("ScheduleState".into(), "DISABLED".into())), "{source:?}");
    }

    #[test]
    fn a_configs_samconfig_and_its_overrides_agree() {
        let text = EXAMPLE.replace(
            "snapshot_prefix = \"aurora-dr\"",
            "snapshot_prefix = \"aurora-dr\"\nschedule = \"rate(6 hours)\"\nretain_days = 14",
        );
        let config = parsed(&text);
        let generated = samconfig(Mapping::embedded(), Some(&config.values), &outputs());
        for env in ENVS {
            let (region, params) = overrides(Mapping::embedded(), env, &config, &outputs()).expect(env);
            assert_eq!(samconfig_params(&generated, env), (region, params.clone()), "[{env}]");
            // The one-line form quotes what SAM CLI would split.
            let line: Vec<String> = params.iter().map(|(n, v)| override_item(n, v)).collect();
            if env == "source" {
                assert!(line.contains(&"ScheduleExpression=\"rate(6 hours)\"".to_owned()), "{line:?}");
                assert!(line.contains(&"ScheduleState=DISABLED".to_owned()), "{line:?}");
                assert!(line.contains(&format!("KMSKey={KEY}")), "{line:?}");
                assert!(line.contains(&"RetainDays=14".to_owned()), "{line:?}");
            }
        }
        let (region, target) = overrides(Mapping::embedded(), "target", &config, &outputs()).expect("target");
        assert_eq!(region, "us-west-1");
        for want in [
            ("SourceTopicArn", TOPIC),
            ("SourceKMSKeyArn", KEY),
            ("ExistingDBClusterIdentifier", "orders-dr"),
            ("TempDBInstanceIdentifier", "orders-dr-next-1"),
            ("AdoptExisting", "false"),
            ("TargetOwnCopy", "false"),
        ] {
            assert!(target.contains(&(want.0.into(), want.1.into())), "{want:?} in {target:?}");
        }
        let (region, kms) = overrides(Mapping::embedded(), "kms", &config, &Outputs::new()).expect("kms");
        assert_eq!(
            (region.as_str(), kms),
            ("us-west-1", vec![("DestinationAccountNumber".into(), "222222222222".into())])
        );
    }

    #[test]
    fn an_output_comes_from_the_stack_or_the_config_never_from_a_copy() {
        let config = parsed(EXAMPLE);
        let problems =
            overrides(Mapping::embedded(), "target", &config, &Outputs::new()).expect_err("no outputs");
        assert!(
            problems.iter().any(|p| p.contains("SourceTopicArn") && p.contains("--stack-outputs-from-aws")),
            "{problems:?}"
        );
        // A key the operator already has is given in the configuration instead.
        let text = EXAMPLE.replace(
            "# kms_key_arn = \"arn:aws:kms:us-west-1:111111111111:key/...\"",
            &format!("kms_key_arn = \"{KEY}\""),
        );
        let (_, source) =
            overrides(Mapping::embedded(), "source", &parsed(&text), &Outputs::new()).expect("source");
        assert!(source.contains(&("KMSKey".into(), KEY.into())), "{source:?}");
    }

    #[test]
    fn deployment_keys_are_checked_with_the_rest() {
        let text = EXAMPLE.replace(
            "snapshot_prefix = \"aurora-dr\"",
            "snapshot_prefix = \"aurora-dr\"\nschedule = \"every day\"\nschedule_state = \"enabled\"\nalarm_email = \"oncall\"",
        );
        let errors = Config::parse(&text).expect_err("invalid");
        let mut names: Vec<&str> = errors.iter().map(|e| e.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["source.alarm_email", "source.schedule", "source.schedule_state"], "{errors:?}");
        let ok = EXAMPLE.replace(
            "snapshot_prefix = \"aurora-dr\"",
            "snapshot_prefix = \"aurora-dr\"\nschedule = \"cron(0 3 * * ? *)\"\nschedule_state = \"ENABLED\"\nalarm_email = \"oncall@example.com\"",
        );
        parsed(&ok);
        // The restore test's schedule: the same rule, and passed to the target stack.
        let with_test = |schedule: &str| {
            EXAMPLE.replace(
                "existing_cluster_id = \"orders-dr\"",
                &format!("existing_cluster_id = \"orders-dr\"\nrestore_test_schedule = \"{schedule}\""),
            )
        };
        let errors = Config::parse(&with_test("weekly")).expect_err("invalid");
        assert!(errors.iter().any(|e| e.name == "target.restore_test_schedule"), "{errors:?}");
        let outputs: Outputs = [
            ("kms", "KeyArn", "arn:aws:kms:us-west-1:111111111111:key/k"),
            ("source", "NotificationTopicArn", "arn:aws:sns:us-west-2:111111111111:t"),
        ]
        .into_iter()
        .map(|(env, k, v)| (env.to_owned(), [(k.to_owned(), v.to_owned())].into()))
        .collect();
        let (_, target) =
            overrides(Mapping::embedded(), "target", &parsed(&with_test("rate(7 days)")), &outputs)
                .expect("target");
        assert!(target.contains(&("RestoreTestSchedule".into(), "rate(7 days)".into())), "{target:?}");
    }

    /// Two DR targets in two accounts and two regions: the configuration
    /// tests' file, with B on another engine under other names.
    fn two_targets() -> String {
        let fixture = crate::config::tests::TWO_TARGETS;
        let b = fixture.find("account_id = \"333333333333\"").expect("B in the fixture");
        let (a, b) = fixture.split_at(b);
        a.to_owned() + &b.replace("aurora-postgresql", "aurora-mysql").replace("orders-dr", "ledger-dr")
    }
    const KEY_EU: &str = "arn:aws:kms:eu-west-1:111111111111:key/eu";

    /// The earlier stacks' outputs of a two-region deployment, by config env.
    fn two_region_outputs() -> Outputs {
        let mut o = Outputs::new();
        o.entry("kms-1".into()).or_default().insert("KeyArn".into(), KEY.into());
        o.entry("kms-2".into()).or_default().insert("KeyArn".into(), KEY_EU.into());
        o.entry("source".into()).or_default().insert("NotificationTopicArn".into(), TOPIC.into());
        o
    }

    fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
        params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn many_targets_give_a_key_stack_per_region_one_source_stack_and_a_target_stack_each() {
        let config = parsed(&two_targets());
        let mapping = Mapping::embedded();
        let planned = plan(mapping, Some(&config.values), &two_region_outputs()).expect("plan");
        let envs: Vec<&str> = planned.iter().map(|p| p.config_env.as_str()).collect();
        assert_eq!(envs, ["kms-1", "kms-2", "source", "target-1", "target-2"]);
        let resolved = |env: &str| {
            let p = planned.iter().find(|p| p.config_env == env).expect(env);
            p.resolve(Missing::Error).unwrap_or_else(|e| panic!("{env}: {e:?}"))
        };
        let (region, kms) = resolved("kms-2");
        assert_eq!(
            (region.as_str(), param(&kms, "DestinationAccountNumber")),
            ("eu-west-1", Some("333333333333"))
        );
        let (region, source) = resolved("source");
        assert_eq!(region, "us-west-2");
        assert_eq!(param(&source, "DestinationAccountNumber"), Some("222222222222,333333333333"));
        assert_eq!(param(&source, "TargetAWSRegion"), Some("us-west-1,eu-west-1"));
        assert_eq!(param(&source, "KMSKey"), Some(format!("{KEY},{KEY_EU}").as_str()));
        let (region, target) = resolved("target-2");
        assert_eq!(region, "eu-west-1");
        for (name, want) in [
            ("SourceKMSKeyArn", KEY_EU),
            ("SourceTopicArn", TOPIC),
            ("Engine", "aurora-mysql"),
            ("DBInstanceClass", "db.r6g.xlarge"),
            ("ExistingDBClusterIdentifier", "ledger-dr"),
            ("SourceAccountNumber", "111111111111"),
        ] {
            assert_eq!(param(&target, name), Some(want), "{name} in {target:?}");
        }
        let (_, first) = resolved("target-1");
        assert_eq!(param(&first, "SourceKMSKeyArn"), Some(KEY));
        assert_eq!(param(&first, "Engine"), Some("aurora-postgresql"));
        // A samconfig of the file holds the same stacks under the same envs.
        let text = samconfig(mapping, Some(&config.values), &two_region_outputs());
        for p in &planned {
            assert_eq!(samconfig_params(&text, &p.config_env), p.resolve(Missing::Error).expect("resolves"));
        }
        // `--env`: one stack by its config env, or every one of a kind.
        assert_eq!(select(&planned, "target").expect("all").len(), 2);
        assert_eq!(select(&planned, "kms-2").expect("one")[0].config_env, "kms-2");
        let err = select(&planned, "target-3").expect_err("two targets");
        assert!(err.contains("target-1, target-2"), "{err}");
        assert!(
            parse_env("source-1").is_err() && parse_env("target-0").is_err() && parse_env("kms-2").is_ok()
        );
    }

    #[test]
    fn a_region_of_two_targets_has_one_key_stack_for_both_and_given_keys_win() {
        let text = two_targets().replace(
            "region = \"us-west-2\"",
            "region = \"us-west-2\"\nkms_key_arn = [\"arn:aws:kms:eu-west-1:111111111111:key/given\"]",
        ) + r#"
[[targets]]
account_id = "444444444444"
region = "us-west-1"
engine = "aurora-postgresql"
instance_class = "db.r6g.large"
existing_cluster_id = "orders-dr"
temp_cluster_id = "orders-dr-next"
existing_instance_id = "orders-dr-1"
temp_instance_id = "orders-dr-next-1"
"#;
        let config = parsed(&text);
        let planned = plan(Mapping::embedded(), Some(&config.values), &two_region_outputs()).expect("plan");
        let envs: Vec<&str> = planned.iter().map(|p| p.config_env.as_str()).collect();
        assert_eq!(envs, ["kms-1", "kms-2", "source", "target-1", "target-2", "target-3"]);
        let resolved =
            |env: &str| planned.iter().find(|p| p.config_env == env).expect(env).resolve(Missing::Error);
        let (_, kms) = resolved("kms-1").expect("kms-1");
        assert_eq!(param(&kms, "DestinationAccountNumber"), Some("222222222222,444444444444"));
        let (_, source) = resolved("source").expect("source");
        assert_eq!(
            param(&source, "DestinationAccountNumber"),
            Some("222222222222,333333333333,444444444444")
        );
        assert_eq!(param(&source, "TargetAWSRegion"), Some("us-west-1,eu-west-1,us-west-1"));
        // eu-west-1's key is given in the file; us-west-1's is its kms stack's.
        let given = "arn:aws:kms:eu-west-1:111111111111:key/given";
        assert_eq!(param(&source, "KMSKey"), Some(format!("{KEY},{given}").as_str()));
        let (_, second) = resolved("target-2").expect("target-2");
        assert_eq!(param(&second, "SourceKMSKeyArn"), Some(given));
        // Without the kms stacks' outputs the source stack's keys are missing, named.
        let planned = plan(Mapping::embedded(), Some(&config.values), &Outputs::new()).expect("plan");
        let source = planned.iter().find(|p| p.config_env == "source").expect("source");
        let problems = source.resolve(Missing::Error).expect_err("no kms outputs");
        assert!(problems.iter().any(|p| p.contains("KMSKey")), "{problems:?}");
    }

    #[test]
    fn the_repository_samconfig_shows_two_targets() {
        let tracked = include_str!("../../../samconfig.toml");
        let (_, source) = samconfig_params(tracked, "two-targets-source");
        assert_eq!(
            param(&source, "DestinationAccountNumber"),
            Some("REPLACE_ME_targets_0_account_id,REPLACE_ME_targets_1_account_id")
        );
        assert_eq!(
            param(&source, "TargetAWSRegion"),
            Some("REPLACE_ME_targets_0_region,REPLACE_ME_targets_1_region")
        );
        for (i, env) in ["two-targets-target-1", "two-targets-target-2"].into_iter().enumerate() {
            let (region, target) = samconfig_params(tracked, env);
            assert_eq!(region, format!("REPLACE_ME_targets_{i}_region"));
            assert_eq!(param(&target, "Engine"), Some(format!("REPLACE_ME_targets_{i}_engine").as_str()));
        }
        let (region, _) = samconfig_params(tracked, "two-targets-kms-2");
        assert_eq!(region, "REPLACE_ME_targets_1_region");
    }

    #[test]
    fn override_items_quote_what_sam_would_split() {
        assert_eq!(override_item("A", "b"), "A=b");
        assert_eq!(override_item("A", ""), "A=\"\"");
        assert_eq!(override_item("A", "rate(1 day)"), "A=\"rate(1 day)\"");
        assert_eq!(override_item("A", "say \"hi\""), "A=\"say \\\"hi\\\"\"");
    }
}
