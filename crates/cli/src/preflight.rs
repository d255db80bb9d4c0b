//! `aurora-dr preflight`: what must hold before the schedule is enabled,
//! read-only, with the operator's own credentials ([`crate::accounts`]).
//!
//! Each check ends as a pass, a warning or a blocker; a blocker names its
//! fix. Exit 1 on any blocker, 0 with warnings only, 2 on a configuration
//! that does not load (before any AWS call).
//!
//! - `source-cluster`: every source cluster exists and is encrypted, and
//!   under which key (the AWS-managed `aws/rds` key is fine: the copy is
//!   re-encrypted under the snapshot key).
//! - `snapshot-quota-source`, `snapshot-quota-copies`, `snapshot-quota-target`:
//!   room for a run's manual cluster snapshots in the source region, for its
//!   copies in the target region, and (target-owned encryption or final
//!   snapshots) in the target account.
//! - `swap-room`: room in the target account for the swap, when the serving
//!   cluster and the temporary one exist at once with their instances.
//! - `snapshot-key`, `key-policy`: the snapshot key exists and is enabled, and
//!   its policy lets the target account use it through RDS.
//! - `topic-policy`, `subscription`: the target account may subscribe to the
//!   source topic, and its subscription exists and is confirmed (with many
//!   targets: filtered on its `targetAccountId`, else a warning).
//!
//! With many targets (`[[targets]]`), the copies' checks (`snapshot-quota-copies`,
//! `snapshot-key`, `key-policy`) run once per target region and the target
//! side's once per target, each finding's detail naming its region or target.
//! - `source-state-machine`, `target-state-machine`: deployed (a warning
//!   before the first deploy).
//! - `names`: every generated name fits RDS's 63 characters (checked at load).
//!
//! Quotas come from RDS DescribeAccountAttributes (`ManualClusterSnapshots`,
//! `DBClusters`, `DBInstances`); when it does not answer, the documented
//! defaults are assumed and the check says so.

use std::path::PathBuf;
use std::process::ExitCode;

use aurora_dr_core::DrError;
use aurora_dr_core::clients::AwsContext;
use aurora_dr_core::ids::{AccountId, Arn, MAX_RDS_ID, Region};
use aurora_dr_core::settings::{TargetRegion, TargetSettings};
use serde::Serialize;
use serde_json::Value;

use crate::accounts::{Account, AccountArgs};
use crate::config::Config;

#[derive(Debug, Clone, clap::Args)]
pub struct PreflightArgs {
    /// The TOML configuration (see examples/drill.toml).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    #[command(flatten)]
    pub accounts: AccountArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Pass,
    Warning,
    Blocker,
}

/// One check's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub level: Level,
    pub detail: String,
    /// What to do about a warning or a blocker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    fn pass(check: &'static str, detail: impl Into<String>) -> Self {
        Self { check, level: Level::Pass, detail: detail.into(), fix: None }
    }
    fn warning(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { check, level: Level::Warning, detail: detail.into(), fix: Some(fix.into()) }
    }
    fn blocker(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { check, level: Level::Blocker, detail: detail.into(), fix: Some(fix.into()) }
    }
    /// With many targets, the detail names what it is about first.
    fn about(mut self, many: bool, what: &str) -> Self {
        if many {
            self.detail = format!("{what}: {}", self.detail);
        }
        self
    }
    fn at_least(mut self, level: Level) -> Self {
        self.level = self.level.max(level);
        self
    }
}

/// Every finding, in the order the checks ran.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub blockers: usize,
    pub warnings: usize,
    pub checks: Vec<Finding>,
}

impl Report {
    fn new(checks: Vec<Finding>) -> Self {
        let count = |l: Level| checks.iter().filter(|f| f.level == l).count();
        let (blockers, warnings) = (count(Level::Blocker), count(Level::Warning));
        Self { ok: blockers == 0, blockers, warnings, checks }
    }

    /// The findings of one check.
    pub fn of(&self, check: &str) -> Vec<&Finding> {
        self.checks.iter().filter(|f| f.check == check).collect()
    }

    /// 1 on any blocker, else 0.
    pub fn exit_code(&self) -> ExitCode {
        if self.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
    }

    /// The report as text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.checks {
            let label = match f.level {
                Level::Pass => "ok",
                Level::Warning => "WARNING",
                Level::Blocker => "BLOCKER",
            };
            out.push_str(&format!("{label:<8} {:<22} {}\n", f.check, f.detail));
            if let Some(fix) = &f.fix {
                out.push_str(&format!("{:<8} {:<22} fix: {fix}\n", "", ""));
            }
        }
        out.push_str(&format!(
            "preflight: {} blocker(s), {} warning(s): {}\n",
            self.blockers,
            self.warnings,
            if self.ok { "ready to enable the schedule" } else { "fix the blockers first" }
        ));
        out
    }
}

pub async fn run(args: PreflightArgs) -> ExitCode {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(2);
        }
    };
    if !args.json {
        eprintln!("preflight: checking both accounts ...");
    }
    let report = collect(&args, &config).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
    } else {
        print!("{}", report.render());
    }
    report.exit_code()
}

/// The stacks `deploy-params` and the deploy guide name.
const SOURCE_STACK: &str = "aurora-dr-source";
const TARGET_STACK: &str = "aurora-dr-target";

/// Runs every check: the source's once, the copies' once per target region,
/// and the target side's once per target. With many targets, each finding
/// of a target or a target region names it first.
pub async fn collect(args: &PreflightArgs, config: &Config) -> Report {
    let src = &config.source;
    let source = args.accounts.context(Account::Source, &src.account_id, &src.region).await;
    let mut checks = Vec::new();
    let many = config.is_multi_target();

    checks.extend(source_clusters(&source, config).await);

    // One snapshot per source cluster and run, and one copy of each per target region.
    let clusters = src.cluster_ids.len().max(1) as i64;
    let retention = "lower source.retain_snapshots (or source.retain_days), delete manual cluster snapshots \
                     that are no longer needed (`aurora-dr cleanup` lists aurora-dr's), or request a higher \
                     \"Manual DB cluster snapshots\" quota in Service Quotas";
    let quotas = Quotas::read(&source).await;
    checks.push(quotas.room("snapshot-quota-source", SNAPSHOTS, clusters, "snapshot(s) per run", retention));
    for region in &src.target_regions {
        let copies = args.accounts.context(Account::Source, &src.account_id, &region.region).await;
        let mut found = vec![Quotas::read(&copies).await.room(
            "snapshot-quota-copies",
            SNAPSHOTS,
            clusters,
            "copy(ies) per run",
            retention,
        )];
        found.extend(key_checks(&copies, config, region).await);
        checks.extend(found.into_iter().map(|f| f.about(many, &format!("copies in {}", region.region))));
    }
    for tgt in &config.targets {
        let found = target_checks(args, config, &source, tgt).await;
        checks.extend(
            found.into_iter().map(|f| f.about(many, &format!("target {} {}", tgt.account_id, tgt.region))),
        );
    }
    checks.push(state_machine(&args.accounts, Account::Source, &src.account_id, &src.region, None).await);
    checks.push(names(config));
    Report::new(checks)
}

/// The checks of one target: its quotas, its key, its subscription, its
/// state machine.
async fn target_checks(
    args: &PreflightArgs,
    config: &Config,
    source: &AwsContext,
    tgt: &TargetSettings,
) -> Vec<Finding> {
    let clusters = config.source.cluster_ids.len().max(1) as i64;
    let target = args.accounts.context(Account::Target, &tgt.account_id, &tgt.region).await;
    let mut checks = Vec::new();
    let target_quotas = Quotas::read(&target).await;
    // The own copy puts each shared snapshot into the target account; a
    // final snapshot keeps the replaced cluster's data.
    let own_snapshots = i64::from(tgt.own_copy) + i64::from(tgt.final_snapshot);
    if own_snapshots > 0 {
        checks.push(target_quotas.room(
            "snapshot-quota-target",
            SNAPSHOTS,
            own_snapshots * clusters,
            "snapshot(s) per run (target-owned copies, final snapshots)",
            "lower target.retain_snapshots, delete the target account's manual cluster snapshots that are \
             no longer needed, or request a higher \"Manual DB cluster snapshots\" quota",
        ));
    }
    // During the swap each pair's serving cluster and its temporary
    // replacement exist at once: one more cluster and its instances per pair.
    let pairs = tgt.pairs.len().max(1) as i64;
    let instances = pairs * i64::from(tgt.instance_count);
    let swap_fix = "delete clusters and instances the target account no longer needs in this region \
                    (renamed-away `-old-` clusters: `aurora-dr status` lists them), or request higher \
                    \"DB clusters\" / \"DB instances\" quotas in Service Quotas";
    checks.push(target_quotas.room(
        "swap-room",
        CLUSTERS,
        pairs,
        "temporary cluster(s) during the swap",
        swap_fix,
    ));
    checks.push(target_quotas.room(
        "swap-room",
        INSTANCES,
        instances,
        "temporary instance(s) during the swap",
        swap_fix,
    ));
    checks.push(target_key(&target, tgt).await);
    checks.extend(topic_checks(&args.accounts, source, config, tgt).await);
    let target_machine = tgt.state_machine_arn.as_ref();
    checks.push(
        state_machine(&args.accounts, Account::Target, &tgt.account_id, &tgt.region, target_machine).await,
    );
    checks
}

// ---------------------------------------------------------------------------
// Source clusters.

async fn source_clusters(source: &AwsContext, config: &Config) -> Vec<Finding> {
    const CHECK: &str = "source-cluster";
    let src = &config.source;
    let mut out = Vec::new();
    let rds = source.rds();
    for id in &src.cluster_ids {
        let cluster = match aurora_dr_core::rds::find_cluster(&rds, id.as_str()).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                out.push(Finding::blocker(
                    CHECK,
                    format!("cluster {id} does not exist in account {} {}", src.account_id, src.region),
                    "check source.cluster_id (or cluster_ids / [[pairs]]), source.region and the source \
                     profile's account",
                ));
                continue;
            }
            Err(e) => {
                out.push(unreadable(CHECK, &format!("cluster {id}"), &e, "rds:DescribeDBClusters"));
                continue;
            }
        };
        if cluster.storage_encrypted() != Some(true) {
            out.push(Finding::blocker(
                CHECK,
                format!("cluster {id} is not encrypted: its snapshots cannot be copied encrypted and shared"),
                "RDS cannot encrypt an existing cluster: snapshot it, copy the snapshot with a KMS key \
                 (CopyDBClusterSnapshot --kms-key-id), restore an encrypted cluster from the copy, and point \
                 source.cluster_id at it",
            ));
            continue;
        }
        let key = cluster.kms_key_id().unwrap_or("(no key reported)");
        let managed = match source.kms().describe_key().key_id(key).send().await {
            Ok(out) => out.key_metadata().and_then(|m| m.key_manager()).map(|m| m.as_str() == "AWS"),
            Err(_) => None,
        };
        let under = match managed {
            Some(true) => format!(
                "the AWS-managed key aws/rds ({key}); fine: the copy is re-encrypted under the snapshot key"
            ),
            Some(false) => format!("the customer managed key {key}"),
            None => format!("key {key} (not described: kms:DescribeKey was refused or failed)"),
        };
        out.push(Finding::pass(CHECK, format!("cluster {id} exists, encrypted under {under}")));
    }
    out
}

/// A check that could not read what it checks.
fn unreadable(check: &'static str, what: &str, e: &DrError, permission: &str) -> Finding {
    Finding::blocker(
        check,
        format!("cannot read {what}: {e}"),
        format!("run preflight with credentials that allow {permission} (docs/runbook.md lists them)"),
    )
}

// ---------------------------------------------------------------------------
// Quotas.

/// `AccountQuotaName`s of DescribeAccountAttributes and their documented
/// defaults (Aurora user guide, "Quotas and constraints for Amazon Aurora":
/// 100 manual DB cluster snapshots, 40 DB clusters, 40 DB instances per
/// account and Region,
/// <https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/CHAP_Limits.html>).
const SNAPSHOTS: (&str, i64) = ("ManualClusterSnapshots", 100);
const CLUSTERS: (&str, i64) = ("DBClusters", 40);
const INSTANCES: (&str, i64) = ("DBInstances", 40);

/// One account's RDS quotas in one region: what DescribeAccountAttributes
/// (RDS API Reference,
/// <https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DescribeAccountAttributes.html>)
/// reports, else usage counted by the Describe calls against the
/// documented defaults.
struct Quotas<'a> {
    ctx: &'a AwsContext,
    place: String,
    /// (name, used, max) as reported.
    reported: Vec<(String, i64, i64)>,
    /// Why DescribeAccountAttributes gave nothing.
    unanswered: Option<String>,
    /// Usage counted when the API did not report it.
    counted: Vec<(&'static str, Result<i64, String>)>,
}

impl<'a> Quotas<'a> {
    async fn read(ctx: &'a AwsContext) -> Quotas<'a> {
        let place = ctx.region().unwrap_or("?").to_owned();
        let mut q = Quotas { ctx, place, reported: Vec::new(), unanswered: None, counted: Vec::new() };
        match ctx.rds().describe_account_attributes().send().await {
            Ok(out) => {
                q.reported = out
                    .account_quotas()
                    .iter()
                    .filter_map(|a| Some((a.account_quota_name()?.to_owned(), a.used()?, a.max()?)))
                    .collect();
            }
            Err(e) => q.unanswered = Some(DrError::from_sdk("DescribeAccountAttributes", e).to_string()),
        }
        for (name, _) in [SNAPSHOTS, CLUSTERS, INSTANCES] {
            if !q.reported.iter().any(|(n, ..)| n == name) {
                let used = q.count(name).await;
                q.counted.push((name, used));
            }
        }
        q
    }

    async fn count(&self, name: &str) -> Result<i64, String> {
        let rds = self.ctx.rds();
        let n = if name == SNAPSHOTS.0 {
            aurora_dr_core::rds::list_manual_cluster_snapshots(&rds, None)
                .await
                .map_err(|e| e.to_string())?
                .len()
        } else if name == CLUSTERS.0 {
            let mut n = 0;
            let mut pages = rds.describe_db_clusters().into_paginator().send();
            while let Some(page) = pages.next().await {
                n += page
                    .map_err(|e| DrError::from_sdk("DescribeDBClusters", e).to_string())?
                    .db_clusters()
                    .len();
            }
            n
        } else {
            let mut n = 0;
            let mut pages = rds.describe_db_instances().into_paginator().send();
            while let Some(page) = pages.next().await {
                n += page
                    .map_err(|e| DrError::from_sdk("DescribeDBInstances", e).to_string())?
                    .db_instances()
                    .len();
            }
            n
        };
        Ok(n as i64)
    }

    /// Whether `needed` more of quota `name` fit.
    fn room(
        &self,
        check: &'static str,
        (name, default): (&str, i64),
        needed: i64,
        what: &str,
        fix: &str,
    ) -> Finding {
        let place = format!("{} in {}", name, self.place);
        let (used, max, fallback) = match self.reported.iter().find(|(n, ..)| n == name) {
            Some((_, used, max)) => (*used, *max, None),
            None => match self.counted.iter().find(|(n, _)| *n == name).map(|(_, u)| u) {
                Some(Ok(used)) => {
                    let why = self
                        .unanswered
                        .clone()
                        .unwrap_or_else(|| format!("DescribeAccountAttributes reported no {name} quota"));
                    (*used, default, Some(why))
                }
                Some(Err(e)) => {
                    return Finding::blocker(
                        check,
                        format!("cannot read {place}: {e}"),
                        "run preflight with credentials that allow rds:DescribeAccountAttributes (or the \
                         Describe calls of the resources) in this account and region",
                    );
                }
                None => (0, default, Some("not read".into())),
            },
        };
        let mut detail = format!("{place}: {used} of {max} used, {needed} {what}");
        if let Some(why) = &fallback {
            detail.push_str(&format!(" (the documented default quota {default} is assumed: {why})"));
        }
        let mut finding = if used + needed > max {
            Finding::blocker(check, format!("{detail}: no room"), fix)
        } else {
            Finding::pass(check, detail)
        };
        if fallback.is_some() {
            finding = finding.at_least(Level::Warning);
            finding.fix.get_or_insert_with(|| {
                "check the account's actual quota in Service Quotas (Amazon RDS); allow \
                 rds:DescribeAccountAttributes to have it read"
                    .into()
            });
        }
        finding
    }
}

// ---------------------------------------------------------------------------
// The snapshot key and its policy.

/// The snapshot key of one target region: its `source.kms_key_arn`, else
/// the kms stack's (and the drill's) alias; its policy must let every target
/// account of the region use it.
async fn key_checks(copies: &AwsContext, config: &Config, place: &TargetRegion) -> Vec<Finding> {
    const KEY: &str = "snapshot-key";
    const POLICY: &str = "key-policy";
    let region = &place.region;
    let kms = copies.kms();
    let key_id = if config.kms_keys_to_create.contains(region) {
        crate::drill::setup::KEY_ALIAS.to_owned()
    } else {
        place.kms_key_arn.as_str().to_owned()
    };
    let meta = match kms.describe_key().key_id(&key_id).send().await {
        Ok(out) => out.key_metadata().cloned(),
        Err(e) => {
            let e = DrError::from_sdk("DescribeKey", e);
            if matches!(e, DrError::NotFound(_)) {
                return vec![Finding::blocker(
                    KEY,
                    format!("no KMS key {key_id} in account {} {region}", config.source.account_id),
                    "deploy infra/kms-key.yaml in the source account and the target region \
                     (`sam deploy --config-env kms`), or set source.kms_key_arn to the key's ARN",
                )];
            }
            return vec![unreadable(KEY, &format!("KMS key {key_id}"), &e, "kms:DescribeKey")];
        }
    };
    let Some(meta) = meta else {
        return vec![Finding::blocker(
            KEY,
            format!("DescribeKey {key_id} returned no key"),
            "check source.kms_key_arn",
        )];
    };
    let arn = meta.arn().unwrap_or(&key_id).to_owned();
    let state = meta.key_state().map(|s| s.as_str().to_owned()).unwrap_or_else(|| "unknown".into());
    let mut out = Vec::new();
    if meta.key_manager().is_some_and(|m| m.as_str() == "AWS") {
        out.push(Finding::blocker(
            KEY,
            format!(
                "{arn} is an AWS managed key: its policy cannot be changed, so no other account may use it"
            ),
            "use a customer managed key (infra/kms-key.yaml) and set source.kms_key_arn to it",
        ));
    } else if state != "Enabled" {
        out.push(Finding::blocker(
            KEY,
            format!("{arn} is {state}: CopyDBClusterSnapshot cannot encrypt with it"),
            "enable the key (kms:EnableKey, or cancel its deletion) or set source.kms_key_arn to an enabled key",
        ));
    } else {
        out.push(Finding::pass(KEY, format!("{arn} is enabled")));
    }
    let policy = match kms.get_key_policy().key_id(&arn).policy_name("default").send().await {
        Ok(p) => p.policy().unwrap_or_default().to_owned(),
        Err(e) => {
            let e = DrError::from_sdk("GetKeyPolicy", e);
            out.push(Finding::warning(
                POLICY,
                format!("cannot read the policy of {arn}: {e}"),
                "allow kms:GetKeyPolicy to have it checked, or check by hand that the target account may \
                 call kms:CreateGrant, kms:Decrypt and kms:DescribeKey through RDS",
            ));
            return out;
        }
    };
    let doc: Value = match serde_json::from_str(&policy) {
        Ok(v) => v,
        Err(e) => {
            out.push(Finding::blocker(
                POLICY,
                format!("the policy of {arn} is not JSON: {e}"),
                "fix the key policy",
            ));
            return out;
        }
    };
    let via_rds = format!("rds.{region}.amazonaws.com");
    for target in &place.account_ids {
        let mut missing = Vec::new();
        let mut notes = Vec::new();
        // What RDS in the target account asks for on a restore: grants for the
        // restored cluster, the snapshot's data keys decrypted, the key described
        // (Aurora user guide, "Sharing a DB cluster snapshot", "Allowing access
        // to an AWS KMS key", the statements infra/kms-key.yaml follows:
        // https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/share-encrypted-snapshot.html).
        for action in ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey"] {
            match policy::allows(&doc, target, action, &|key, values| match key {
                "kms:viaservice" => Some(values.iter().any(|v| policy::matches(v, &via_rds))),
                "kms:grantisforawsresource" => Some(values.iter().any(|v| v.eq_ignore_ascii_case("true"))),
                _ => None,
            }) {
                policy::Verdict::Allowed(n) => notes.extend(n),
                policy::Verdict::Denied(why) => missing.push(format!("{action} ({why})")),
            }
        }
        out.push(if missing.is_empty() {
        let mut detail = format!(
            "the policy of {arn} lets account {target} call kms:CreateGrant, kms:Decrypt and kms:DescribeKey \
                 through RDS"
        );
        if !notes.is_empty() {
            detail.push_str(&format!(" ({})", notes.join("; ")));
        }
        Finding::pass(POLICY, detail)
    } else {
        Finding::blocker(
            POLICY,
            format!(
                "the policy of {arn} does not let account {target} use the key through RDS: {}",
                missing.join(", ")
            ),
            format!(
                "add the statements of infra/kms-key.yaml for account {target} (kms:CreateGrant with \
                 kms:ViaService {via_rds} and kms:GrantIsForAWSResource, kms:Decrypt with kms:ViaService, and \
                 kms:DescribeKey), or redeploy \
                 that stack with DestinationAccountNumber={target}"
            ),
        )
    });
    }
    out
}

// ---------------------------------------------------------------------------
// The DR cluster's key, in the target account.

/// The key the target side restores the DR cluster under:
/// `target.kms_key_arn`, else the target stack's `TargetKMSKeyArn` output,
/// else the drill's alias. RDS encrypts clusters only with symmetric
/// encryption keys, and a restore under a disabled or deleted key fails with
/// `KMSKeyNotAccessibleFault` (Aurora user guide, "AWS KMS key management",
/// https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Overview.Encryption.Keys.html;
/// RestoreDBClusterFromSnapshot, errors).
async fn target_key(target: &AwsContext, tgt: &TargetSettings) -> Finding {
    const CHECK: &str = "target-key";
    let key_id = match &tgt.kms_key_arn {
        Some(arn) => arn.as_str().to_owned(),
        None => match crate::deploy_params::stack_outputs(target, TARGET_STACK).await {
            Ok(outputs) if outputs.contains_key("TargetKMSKeyArn") => outputs["TargetKMSKeyArn"].clone(),
            _ => crate::drill::setup::TARGET_KEY_ALIAS.to_owned(),
        },
    };
    let meta = match target.kms().describe_key().key_id(&key_id).send().await {
        Ok(out) => out.key_metadata().cloned(),
        Err(e) => {
            let e = DrError::from_sdk("DescribeKey", e);
            if !matches!(e, DrError::NotFound(_)) {
                return unreadable(CHECK, &format!("KMS key {key_id}"), &e, "kms:DescribeKey");
            }
            if tgt.kms_key_arn.is_some() {
                return Finding::blocker(
                    CHECK,
                    format!("no KMS key {key_id} in account {} {}", tgt.account_id, tgt.region),
                    "correct target.kms_key_arn, or remove it and let the target stack create the key",
                );
            }
            return Finding::warning(
                CHECK,
                format!("no DR cluster key yet in account {} {}", tgt.account_id, tgt.region),
                "the target stack creates it (output TargetKMSKeyArn) unless TargetKMSKeyArn is given; \
                 set target.kms_key_arn to have it checked",
            );
        }
    };
    let Some(meta) = meta else {
        return Finding::blocker(
            CHECK,
            format!("DescribeKey {key_id} returned no key"),
            "check target.kms_key_arn",
        );
    };
    let arn = meta.arn().unwrap_or(&key_id).to_owned();
    let state = meta.key_state().map(|s| s.as_str().to_owned()).unwrap_or_else(|| "unknown".into());
    let spec = meta.key_spec().map(|s| s.as_str().to_owned()).unwrap_or_else(|| "SYMMETRIC_DEFAULT".into());
    if spec != "SYMMETRIC_DEFAULT" {
        Finding::blocker(
            CHECK,
            format!("{arn} is a {spec} key: RDS encrypts clusters only with symmetric encryption keys"),
            "set target.kms_key_arn (TargetKMSKeyArn) to a symmetric encryption key, or leave it empty",
        )
    } else if state != "Enabled" {
        Finding::blocker(
            CHECK,
            format!("{arn} is {state}: the restore would fail with KMSKeyNotAccessibleFault"),
            "enable the key (kms:EnableKey, or cancel its deletion) or set target.kms_key_arn to an enabled key",
        )
    } else {
        Finding::pass(CHECK, format!("{arn} is enabled; the DR cluster is restored under it"))
    }
}

// ---------------------------------------------------------------------------
// The topic, its policy and the target's subscription.

/// The source topic: the configuration's, else the source stack's output,
/// else the drill's topic by name.
async fn topic_arn(
    accounts: &AccountArgs,
    source: &AwsContext,
    config: &Config,
    tgt: &TargetSettings,
) -> Option<String> {
    if let Some(arn) = config.source.notification_topic_arn.as_ref().or(tgt.source_topic_arn.as_ref()) {
        return Some(arn.as_str().to_owned());
    }
    if let Ok(outputs) = crate::deploy_params::stack_outputs(source, SOURCE_STACK).await
        && let Some(arn) = outputs.get("NotificationTopicArn")
    {
        return Some(arn.clone());
    }
    // A deployed topic's name is generated; the drill's is fixed.
    accounts.endpoint.as_ref()?;
    let suffix = format!(":{}", crate::drill::setup::SNAPSHOT_TOPIC);
    let mut pages = source.sns().list_topics().into_paginator().send();
    while let Some(Ok(page)) = pages.next().await {
        if let Some(t) = page.topics().iter().filter_map(|t| t.topic_arn()).find(|a| a.ends_with(&suffix)) {
            return Some(t.to_owned());
        }
    }
    None
}

async fn topic_checks(
    accounts: &AccountArgs,
    source: &AwsContext,
    config: &Config,
    tgt: &TargetSettings,
) -> Vec<Finding> {
    const POLICY: &str = "topic-policy";
    const SUBSCRIPTION: &str = "subscription";
    let target = &tgt.account_id;
    let Some(topic) = topic_arn(accounts, source, config, tgt).await else {
        return vec![Finding::blocker(
            POLICY,
            format!(
                "no source topic: source.notification_topic_arn is not set and stack {SOURCE_STACK} has no NotificationTopicArn output"
            ),
            "deploy the source stack (`sam deploy --config-env source`) or set source.notification_topic_arn",
        )];
    };
    let sns = source.sns();
    let mut out = Vec::new();
    match sns.get_topic_attributes().topic_arn(&topic).send().await {
        Ok(attrs) => {
            let policy = attrs.attributes().and_then(|a| a.get("Policy")).cloned().unwrap_or_default();
            let doc: Value = serde_json::from_str(&policy).unwrap_or(Value::Null);
            let region = tgt.region.as_str();
            let verdict = policy::allows(&doc, target, "sns:Subscribe", &|key, values| {
                match key {
                // The target stack subscribes a Lambda function of its own.
                "sns:protocol" => Some(values.iter().any(|v| v.eq_ignore_ascii_case("lambda"))),
                "sns:endpoint" => Some(values.iter().any(|v| {
                    policy::matches(
                        v,
                        &format!("arn:aws:lambda:{region}:{target}:function:{TARGET_STACK}-InvokeStepFunctionFunction"),
                    )
                })),
                _ => None,
            }
            });
            out.push(match verdict {
                policy::Verdict::Allowed(notes) => {
                    let mut d = format!("the policy of {topic} lets account {target} subscribe");
                    if !notes.is_empty() {
                        d.push_str(&format!(" ({})", notes.join("; ")));
                    }
                    Finding::pass(POLICY, d)
                }
                policy::Verdict::Denied(why) => Finding::blocker(
                    POLICY,
                    format!("the policy of {topic} does not let account {target} subscribe: {why}"),
                    format!(
                        "redeploy the source stack with DestinationAccountNumber={target} (its \
                         NotificationTopicPolicy), or allow sns:Subscribe for arn:aws:iam::{target}:root"
                    ),
                ),
            });
        }
        Err(e) => {
            let e = DrError::from_sdk("GetTopicAttributes", e);
            out.push(if matches!(e, DrError::NotFound(_)) {
                Finding::blocker(
                    POLICY,
                    format!("topic {topic} does not exist"),
                    "deploy the source stack, or correct source.notification_topic_arn",
                )
            } else {
                unreadable(POLICY, &format!("topic {topic}"), &e, "sns:GetTopicAttributes")
            });
            return out;
        }
    }
    let many = config.is_multi_target().then_some(&tgt.region);
    out.push(subscription(source, &topic, target, many).await.unwrap_or_else(|e| {
        unreadable(SUBSCRIPTION, &format!("the subscriptions of {topic}"), &e, "sns:ListSubscriptionsByTopic")
    }));
    out
}

/// The target account's subscription to `topic`: present and confirmed.
/// With many targets (`many`: this target's region), the topic carries every
/// target's messages, so the subscription must filter on this target's
/// `targetAccountId` (an SNS subscription filter policy on message
/// attributes, SNS Developer Guide, "Amazon SNS message filtering":
/// <https://docs.aws.amazon.com/sns/latest/dg/sns-message-filtering.html>);
/// without one it receives the other targets' messages too, which its
/// function refuses (`InvalidInput`), each one a failed delivery.
async fn subscription(
    source: &AwsContext,
    topic: &str,
    target: &AccountId,
    many: Option<&Region>,
) -> Result<Finding, DrError> {
    const CHECK: &str = "subscription";
    let sns = source.sns();
    let mut pending = Vec::new();
    let mut confirmed = Vec::new();
    let mut unfiltered = Vec::new();
    let mut pages = sns.list_subscriptions_by_topic().topic_arn(topic).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| DrError::from_sdk("ListSubscriptionsByTopic", e))?;
        for s in page.subscriptions() {
            let endpoint = s.endpoint().unwrap_or("?").to_owned();
            let arn = s.subscription_arn().unwrap_or_default();
            // Unconfirmed subscriptions are listed as `PendingConfirmation` (SNS API Reference,
            // ListSubscriptionsByTopic / GetSubscriptionAttributes `PendingConfirmation`).
            if arn == "PendingConfirmation" {
                if s.owner() == Some(target.as_str()) {
                    pending.push(endpoint);
                }
                continue;
            }
            let attrs = sns.get_subscription_attributes().subscription_arn(arn).send().await.ok();
            let attr = |k: &str| attrs.as_ref().and_then(|a| a.attributes()).and_then(|a| a.get(k)).cloned();
            let owner = attr("Owner").or_else(|| s.owner().map(str::to_owned));
            let by_target =
                owner.as_deref() == Some(target.as_str()) || endpoint.contains(&format!(":{target}:"));
            if !by_target {
                continue;
            }
            if attr("PendingConfirmation").is_some_and(|p| p == "true") {
                pending.push(endpoint);
            } else {
                if many.is_some() && !filters_on(attr("FilterPolicy").as_deref(), target) {
                    unfiltered.push(endpoint.clone());
                }
                confirmed.push(format!("{} {endpoint}", s.protocol().unwrap_or("?")));
            }
        }
    }
    Ok(if !confirmed.is_empty() && !unfiltered.is_empty() {
        let region = many.map(Region::as_str).unwrap_or_default();
        Finding::warning(
            CHECK,
            format!(
                "account {target} is subscribed to {topic} without a filter policy on targetAccountId ({}): it \
                 receives every target's messages and refuses the others'",
                unfiltered.join(", ")
            ),
            format!(
                "set the subscription's FilterPolicy to {{\"targetAccountId\": [\"{target}\"], \"targetRegion\": \
                 [\"{region}\"]}} (sns:SetSubscriptionAttributes)"
            ),
        )
    } else if !confirmed.is_empty() {
        Finding::pass(CHECK, format!("account {target} is subscribed to {topic}: {}", confirmed.join(", ")))
    } else if !pending.is_empty() {
        Finding::blocker(
            CHECK,
            format!(
                "the subscription of account {target} to {topic} is not confirmed ({})",
                pending.join(", ")
            ),
            "confirm it (the target stack's Lambda subscription confirms itself; an http(s) endpoint must \
             answer the SubscriptionConfirmation), or redeploy the target stack",
        )
    } else {
        Finding::blocker(
            CHECK,
            format!("account {target} has no subscription to {topic}: no run would start a restore"),
            "deploy the target stack (`sam deploy --config-env target`, its SourceTopicArn = this topic)",
        )
    })
}

/// Whether a subscription's filter policy (JSON, on message attributes)
/// admits only `target`'s messages: a `targetAccountId` condition naming
/// exactly that account.
fn filters_on(policy: Option<&str>, target: &AccountId) -> bool {
    let Some(doc) = policy.and_then(|p| serde_json::from_str::<Value>(p).ok()) else { return false };
    doc.get("targetAccountId")
        .and_then(Value::as_array)
        .is_some_and(|values| values.len() == 1 && values[0].as_str() == Some(target.as_str()))
}

// ---------------------------------------------------------------------------
// State machines.

/// The stack of `side` and its output naming the side's state machine.
pub(crate) fn machine_output(side: Account) -> (&'static str, &'static str) {
    match side {
        Account::Source => (SOURCE_STACK, "SourceStateMachineArn"),
        Account::Target => (TARGET_STACK, "TargetStateMachineArn"),
    }
}

async fn state_machine(
    accounts: &AccountArgs,
    side: Account,
    account: &AccountId,
    region: &Region,
    configured: Option<&Arn>,
) -> Finding {
    let check = match side {
        Account::Source => "source-state-machine",
        Account::Target => "target-state-machine",
    };
    let (stack, output) = machine_output(side);
    let ctx = accounts.context(side, account, region).await;
    let arn = match configured {
        Some(arn) => arn.as_str().to_owned(),
        None => match crate::deploy_params::stack_outputs(&ctx, stack).await {
            Ok(outputs) => match outputs.get(output) {
                Some(arn) => arn.clone(),
                None => {
                    return Finding::warning(
                        check,
                        format!("stack {stack} has no {output} output"),
                        format!("deploy the {stack} stack from this repository's template.yaml"),
                    );
                }
            },
            Err(_) => {
                return Finding::warning(
                    check,
                    format!("not deployed yet: no stack {stack} in account {account} {region}"),
                    format!(
                        "deploy it before enabling the schedule (`sam deploy --config-env {}`, docs/deploy.md)",
                        if side == Account::Source { "source" } else { "target" }
                    ),
                );
            }
        },
    };
    match ctx.sfn().describe_state_machine().state_machine_arn(&arn).send().await {
        Ok(out) => {
            let status = out.status().map(|s| s.as_str().to_owned()).unwrap_or_else(|| "ACTIVE".into());
            if status == "ACTIVE" {
                Finding::pass(check, format!("{arn} exists"))
            } else {
                Finding::blocker(check, format!("{arn} is {status}"), "redeploy the stack that owns it")
            }
        }
        Err(e) => {
            let e = DrError::from_sdk("DescribeStateMachine", e);
            if e.aws_code() == Some("StateMachineDoesNotExist") {
                Finding::blocker(
                    check,
                    format!("{arn} does not exist"),
                    "correct target.state_machine_arn, or redeploy the stack whose output names it",
                )
            } else {
                unreadable(check, &arn, &e, "states:DescribeStateMachine")
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Names.

/// The settings refuse at load any generated name over RDS's limit; this
/// reports the longest ones a run makes, so the margin is visible.
fn names(config: &Config) -> Finding {
    let src = &config.source;
    let stamp = "yyyymmddHHMMss";
    let mut longest: Vec<(usize, String)> = Vec::new();
    for cluster in &src.cluster_ids {
        let name = format!("{}-{cluster}-{stamp}", src.snapshot_prefix);
        longest.push((name.len(), name));
    }
    for tgt in &config.targets {
        let final_suffix = if tgt.final_snapshot { "-final" } else { "" };
        for pair in &tgt.pairs {
            let name = format!("{}-old-{stamp}{final_suffix}", pair.existing_cluster_id);
            longest.push((name.len(), name));
        }
    }
    longest.sort();
    let (len, name) = longest.pop().unwrap_or_default();
    Finding::pass(
        "names",
        format!("every generated name fits RDS's {MAX_RDS_ID} characters; the longest, {name}, has {len}"),
    )
}

// ---------------------------------------------------------------------------

/// Just enough of IAM's policy evaluation to answer "may this account call
/// this action?" from a resource policy (a key policy, a topic policy):
/// an explicit Deny without conditions wins, then an Allow whose principal
/// covers the account and whose conditions the caller can meet (IAM User
/// Guide, "Policy evaluation logic",
/// <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>).
/// A condition the check cannot judge is assumed met and named.
pub mod policy {
    use aurora_dr_core::ids::AccountId;
    use serde_json::Value;

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Verdict {
        /// Allowed, with notes on what was assumed.
        Allowed(Vec<String>),
        Denied(String),
    }

    /// IAM wildcards (`*`, `?`), case-insensitive as action names are.
    pub fn matches(pattern: &str, s: &str) -> bool {
        let (p, s): (Vec<char>, Vec<char>) =
            (pattern.to_ascii_lowercase().chars().collect(), s.to_ascii_lowercase().chars().collect());
        let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
        while j < s.len() {
            if i < p.len() && (p[i] == '?' || p[i] == s[j]) {
                i += 1;
                j += 1;
            } else if i < p.len() && p[i] == '*' {
                star = Some(i);
                mark = j;
                i += 1;
            } else if let Some(st) = star {
                i = st + 1;
                mark += 1;
                j = mark;
            } else {
                return false;
            }
        }
        p[i..].iter().all(|c| *c == '*')
    }

    fn strings(v: &Value) -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
            Value::Bool(b) => vec![b.to_string()],
            _ => Vec::new(),
        }
    }

    /// Whether the statement's principal covers `account` (the account
    /// itself or everyone); `Some(note)` when only a principal inside it.
    fn principal(stmt: &Value, account: &AccountId) -> Option<Option<String>> {
        let p = &stmt["Principal"];
        if p == "*" {
            return Some(None);
        }
        for name in strings(&p["AWS"]) {
            let root = name.ends_with(&format!(":iam::{account}:root"));
            if name == "*" || name == account.as_str() || root {
                return Some(None);
            }
            if name.contains(&format!(":iam::{account}:")) {
                return Some(Some(format!("only for {name}")));
            }
        }
        None
    }

    /// A condition value with the policy variable `${aws:PrincipalAccount}`
    /// (names are case-insensitive) replaced by the calling account ("IAM
    /// policy elements: Variables and tags",
    /// https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html).
    fn with_variables(value: &str, account: &AccountId) -> String {
        const VARIABLE: &str = "${aws:principalaccount}";
        let mut out = value.to_owned();
        while let Some(at) = out.to_ascii_lowercase().find(VARIABLE) {
            out.replace_range(at..at + VARIABLE.len(), account.as_str());
        }
        out
    }

    /// `judge(condition key in lowercase, values)`: `Some(met)` for a key it
    /// knows, `None` for one it does not.
    pub fn allows(
        doc: &Value,
        account: &AccountId,
        action: &str,
        judge: &dyn Fn(&str, &[String]) -> Option<bool>,
    ) -> Verdict {
        let statements = match &doc["Statement"] {
            Value::Array(a) => a.clone(),
            Value::Object(_) => vec![doc["Statement"].clone()],
            _ => return Verdict::Denied("the policy has no statements".into()),
        };
        let acts = |s: &Value| strings(&s["Action"]).iter().any(|a| matches(a, action));
        for s in &statements {
            if s["Effect"] == "Deny"
                && acts(s)
                && principal(s, account).is_some()
                && s.get("Condition").is_none()
            {
                return Verdict::Denied(format!(
                    "statement {} denies it",
                    s["Sid"].as_str().unwrap_or("(without Sid)")
                ));
            }
        }
        let mut why = format!("no statement allows it for account {account}");
        for s in &statements {
            if s["Effect"] != "Allow" || !acts(s) {
                continue;
            }
            let Some(only) = principal(s, account) else { continue };
            let mut notes: Vec<String> = only.into_iter().collect();
            let mut met = true;
            for (operator, block) in s["Condition"].as_object().into_iter().flatten() {
                for (key, values) in block.as_object().into_iter().flatten() {
                    let lower = key.to_ascii_lowercase();
                    let list: Vec<String> =
                        strings(values).iter().map(|v| with_variables(v, account)).collect();
                    let verdict = match lower.as_str() {
                        // The calling account, by any of its names (SNS's
                        // default topic policy allows `*` with
                        // `AWS:SourceOwner` = the owner: the owner only).
                        "aws:sourceowner"
                        | "aws:sourceaccount"
                        | "aws:principalaccount"
                        | "kms:calleraccount" => Some(list.iter().any(|v| v == account.as_str())),
                        // Every AWS SDK call, and RDS's, is made over TLS.
                        "aws:securetransport" => Some(list.iter().any(|v| v.eq_ignore_ascii_case("true"))),
                        _ => judge(&lower, &list),
                    };
                    match verdict {
                        Some(true) => {}
                        Some(false) => {
                            met = false;
                            why = format!(
                                "statement {} allows it only when {operator} {key} {values}",
                                s["Sid"].as_str().unwrap_or("(without Sid)")
                            );
                        }
                        None => notes.push(format!("condition {operator} {key} {values} not judged")),
                    }
                }
            }
            if met {
                return Verdict::Allowed(notes);
            }
        }
        Verdict::Denied(why)
    }
}

#[cfg(test)]
mod tests {
    use super::policy::{Verdict, allows, matches};
    use aurora_dr_core::ids::AccountId;
    use serde_json::json;

    fn target() -> AccountId {
        "222222222222".parse().expect("account")
    }

    fn no_conditions(_: &str, _: &[String]) -> Option<bool> {
        None
    }

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(matches("kms:*", "kms:CreateGrant"));
        assert!(matches("KMS:create*", "kms:CreateGrant"), "action names are case-insensitive");
        assert!(matches("kms:Describe?ey", "kms:DescribeKey"));
        assert!(matches("*", "sns:Subscribe"));
        assert!(!matches("kms:Create", "kms:CreateGrant"));
        assert!(!matches("kms:Describe*", "kms:CreateGrant"));
        assert!(matches("rds.*.amazonaws.com", "rds.us-west-1.amazonaws.com"));
    }

    #[test]
    fn the_account_root_the_account_id_and_everyone_are_principals_of_the_account() {
        for principal in [
            json!({"AWS": "arn:aws:iam::222222222222:root"}),
            json!({"AWS": ["arn:aws:iam::333333333333:root", "222222222222"]}),
            json!("*"),
        ] {
            let doc = json!({"Statement": [{"Effect": "Allow", "Principal": principal, "Action": "kms:*"}]});
            assert_eq!(allows(&doc, &target(), "kms:CreateGrant", &no_conditions), Verdict::Allowed(vec![]));
        }
        let other = json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::333333333333:root"}, "Action": "kms:*"}});
        assert!(matches!(allows(&other, &target(), "kms:CreateGrant", &no_conditions), Verdict::Denied(_)));
        // A role of the account: allowed for that role only, and said so.
        let role = json!({"Statement": [{"Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::222222222222:role/restore"}, "Action": "kms:CreateGrant"}]});
        let Verdict::Allowed(notes) = allows(&role, &target(), "kms:CreateGrant", &no_conditions) else {
            panic!("allowed for the role")
        };
        assert!(notes[0].contains("role/restore"), "{notes:?}");
    }

    #[test]
    fn the_principal_account_variable_stands_for_the_calling_account() {
        // The source stack's topic policy: each listed account, a function of its own.
        let doc = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["222222222222", "333333333333"]},
            "Action": "sns:Subscribe",
            "Condition": {"StringLike": {"sns:Endpoint": ["arn:*:lambda:us-west-1:${aws:PrincipalAccount}:function:*"]}}}]});
        let own = |key: &str, values: &[String]| {
            (key == "sns:endpoint").then(|| {
                values.iter().any(|v| matches(v, "arn:aws:lambda:us-west-1:222222222222:function:f"))
            })
        };
        let others = |key: &str, values: &[String]| {
            (key == "sns:endpoint").then(|| {
                values.iter().any(|v| matches(v, "arn:aws:lambda:us-west-1:333333333333:function:f"))
            })
        };
        assert_eq!(allows(&doc, &target(), "sns:Subscribe", &own), Verdict::Allowed(vec![]));
        assert!(matches!(allows(&doc, &target(), "sns:Subscribe", &others), Verdict::Denied(_)));
    }

    #[test]
    fn account_conditions_are_judged_against_the_account() {
        // SNS's default topic policy: everyone, as long as the owner account calls.
        let default = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
            "Action": ["SNS:Subscribe", "SNS:Publish"],
            "Condition": {"StringEquals": {"AWS:SourceOwner": "111111111111"}}}]});
        let Verdict::Denied(why) = allows(&default, &target(), "sns:Subscribe", &no_conditions) else {
            panic!("the owner only")
        };
        assert!(why.contains("AWS:SourceOwner"), "{why}");
        let owner: AccountId = "111111111111".parse().expect("account");
        assert_eq!(allows(&default, &owner, "sns:Subscribe", &no_conditions), Verdict::Allowed(vec![]));
    }

    #[test]
    fn an_unconditional_deny_wins_and_conditions_are_judged_or_named() {
        let doc = json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "222222222222"}, "Action": "sns:Subscribe"},
            {"Sid": "NoOne", "Effect": "Deny", "Principal": "*", "Action": "sns:*"}
        ]});
        assert_eq!(
            allows(&doc, &target(), "sns:Subscribe", &no_conditions),
            Verdict::Denied("statement NoOne denies it".into())
        );
        // A Deny with a condition (TLS only, say) does not block on its own.
        let doc = json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "222222222222"}, "Action": "sns:Subscribe",
             "Condition": {"StringEquals": {"sns:Protocol": "lambda", "aws:PrincipalOrgID": "o-1234567890"}}},
            {"Effect": "Deny", "Principal": "*", "Action": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
        ]});
        let judge =
            |key: &str, values: &[String]| (key == "sns:protocol").then(|| values.contains(&"lambda".into()));
        let Verdict::Allowed(notes) = allows(&doc, &target(), "sns:Subscribe", &judge) else {
            panic!("allowed")
        };
        assert_eq!(notes.len(), 1, "the condition it cannot judge is named: {notes:?}");
        assert!(notes[0].contains("aws:PrincipalOrgID"));
        let email_only =
            |key: &str, values: &[String]| (key == "sns:protocol").then(|| values.contains(&"email".into()));
        let Verdict::Denied(why) = allows(&doc, &target(), "sns:Subscribe", &email_only) else {
            panic!("denied")
        };
        assert!(why.contains("sns:Protocol"), "{why}");
    }
}
