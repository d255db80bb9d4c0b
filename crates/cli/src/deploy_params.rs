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

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use aurora_dr_core::clients::AwsContext;
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
    #[arg(long, value_parser = ENVS, required_unless_present = "samconfig", conflicts_with = "samconfig")]
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

/// A samconfig.toml for all three stacks: from a configuration, or (`None`)
/// the repository's, with placeholders.
pub fn samconfig(mapping: &Mapping, values: Option<&BTreeMap<String, String>>, outputs: &Outputs) -> String {
    let mut out = String::new();
    out.push_str(SAMCONFIG_HEAD);
    for stack in &mapping.stacks {
        // Placeholders never fail; a configuration's gaps become placeholders too.
        let (region, params) = resolve(stack, values, outputs, Missing::Placeholder).unwrap_or_else(|_| {
            resolve(stack, None, outputs, Missing::Placeholder)
                .unwrap_or_else(|_| (String::new(), Vec::new()))
        });
        let (title, where_) = match stack.env.as_str() {
            "kms" => {
                ("kms", "Plain CloudFormation (no build): the source account's key in the TARGET region.")
            }
            "source" => ("source", "Source account, source region: schedule, source state machine, topics."),
            _ => ("target", "Target account, target region: subscription, target state machine."),
        };
        out.push_str(&format!("\n# {:-<71}\n# {where_}\n[{title}.deploy.parameters]\n", format!("{title} ")));
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
    out
}

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

/// The outputs `env`'s stack needs (all of them with `--samconfig`), read
/// from CloudFormation.
pub async fn fetch_outputs(
    args: &DeployParamsArgs,
    mapping: &Mapping,
    config: &Config,
) -> Result<Outputs, String> {
    let wanted: Vec<&str> = match args.env.as_deref() {
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
    let mut outputs = Outputs::new();
    for env in ["kms", "source"] {
        if !wanted.contains(&env) {
            continue;
        }
        // Both earlier stacks live in the source account; the key in the target region.
        let region = if env == "kms" { &config.target.region } else { &config.source.region };
        let ctx = args.accounts.context(Account::Source, &config.source.account_id, region).await;
        match stack_outputs(&ctx, &format!("aurora-dr-{env}")).await {
            Ok(o) => {
                outputs.insert(env.to_owned(), o);
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
    let config = match Config::load_one_target(path, "deploy-params") {
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
    let env = args.env.as_deref().unwrap_or("kms");
    match overrides(mapping, env, &config, &outputs) {
        Ok((region, params)) => {
            let line: Vec<String> = params.iter().map(|(n, v)| override_item(n, v)).collect();
            println!("{}", line.join(" "));
            let account = mapping.stack(env).and_then(|s| config.values.get(&s.account_key)).cloned();
            eprintln!(
                "# stack aurora-dr-{env}: account {}, region {region}; deploy it with\n#   sam deploy \
                 --config-env {env} --region {region} --parameter-overrides \"$(aurora-dr deploy-params --config \
                 {} --env {env}{})\"",
                account.unwrap_or_default(),
                path.display(),
                if env == "kms" { "" } else { " --stack-outputs-from-aws" }
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            eprintln!("deploy-params: stack aurora-dr-{env}:");
            for p in problems {
                eprintln!("  {p}");
            }
            ExitCode::from(2)
        }
    }
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

    #[test]
    fn override_items_quote_what_sam_would_split() {
        assert_eq!(override_item("A", "b"), "A=b");
        assert_eq!(override_item("A", ""), "A=\"\"");
        assert_eq!(override_item("A", "rate(1 day)"), "A=\"rate(1 day)\"");
        assert_eq!(override_item("A", "say \"hi\""), "A=\"say \\\"hi\\\"\"");
    }
}
