//! `aurora-dr status`: what exists on both sides, read-only.
//!
//! Source account, source region: the source cluster and aurora-dr's
//! snapshots of it. Source account, target region: the encrypted copies and
//! whom each is shared with. Target account, target region: the cluster
//! under the existing name (status, endpoint, the run that restored it), a
//! leftover temporary cluster, a restore test's cluster (`{temp}-test`,
//! while a test runs or kept after a failed one), renamed-away old clusters, and the target
//! state machine's last executions when its ARN is configured.
//!
//! Every renamed-away `{existing}-old-*` cluster is also listed under
//! `kept`, with the AWS CLI commands that remove it: one without
//! aurora-dr's tags (a hand-made cluster adopted with `ADOPT_EXISTING`) is
//! never deleted by aurora-dr, and one with them is left only when its run
//! failed before Terminate deleted it (`aurora-dr cleanup` removes those).
//!
//! Many DR targets (`[[targets]]`): the same for each target in turn; the
//! text shows the source once, then each target's copies and DR side under
//! a line naming it (`--json`: `targets`, one full report per target).
//!
//! Each side is read with the operator's own credentials
//! ([`crate::accounts`]: `--source-profile`, `--target-profile`, optionally
//! `--assume-role NAME`); the calls are read-only (docs/runbook.md lists
//! the permissions).

use std::path::PathBuf;
use std::process::ExitCode;

use aurora_dr_core::clients::AwsContext;
use aurora_dr_core::payload::KeptCluster;
use aurora_dr_core::rds::{self, TAG_RUN_ID, TAG_SOURCE_CLUSTER, is_managed, tag_value};
use aurora_dr_core::{DrError, DrResult};
use serde_json::{Value, json};

use crate::accounts::{Account, AccountArgs};
use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The TOML configuration (see examples/drill.toml). With `[[targets]]`
    /// each target in turn: its account and region, and its copies' region
    /// (one --target-profile reaches every target account: use
    /// --assume-role, or a file per target).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    #[command(flatten)]
    pub accounts: AccountArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// How many snapshots to list per place.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub limit: usize,
}

pub async fn run(args: StatusArgs) -> ExitCode {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(2);
        }
    };
    let report = if config.is_multi_target() {
        collect_each(&args, &config).await
    } else {
        collect(&args, &config).await
    };
    match report {
        Ok(report) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            } else {
                print!("{}", render_any(&report));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("status: {} ({})", e, e.asl_name());
            ExitCode::FAILURE
        }
    }
}

/// Many DR targets: [`collect`] for each target in turn (its account and
/// region, its copies' region), as `{"targets": [{"accountId", "region",
/// "status"}, ...]}`; the source account is read for each.
pub async fn collect_each(args: &StatusArgs, config: &Config) -> DrResult<Value> {
    let mut targets = Vec::new();
    for t in &config.targets {
        let status = collect(args, &config.for_target(t)).await?;
        targets
            .push(json!({"accountId": t.account_id.as_str(), "region": t.region.as_str(), "status": status}));
    }
    Ok(json!({ "targets": targets }))
}

/// [`render`] of one target's report; of many, the source once (every
/// target's report reads the same source account) and then each target's
/// copies and DR side under a line naming the target.
pub fn render_any(report: &Value) -> String {
    let Some(targets) = report.get("targets").and_then(Value::as_array) else { return render(report) };
    let mut out = targets.first().map(|t| render_source(&t["status"])).unwrap_or_default();
    for (i, t) in targets.iter().enumerate() {
        let text = |k: &str| t[k].as_str().unwrap_or("-").to_owned();
        out.push_str(&format!(
            "== target {} of {}: {} {}\n",
            i + 1,
            targets.len(),
            text("accountId"),
            text("region")
        ));
        out.push_str(&render_target(&t["status"]));
    }
    out
}

/// Everything `status` shows, as JSON.
pub async fn collect(args: &StatusArgs, config: &Config) -> DrResult<Value> {
    let (src, tgt) = (&config.source, &config.target);
    let source = args.accounts.context(Account::Source, &src.account_id, &src.region).await;
    let copies = args.accounts.context(Account::Source, &src.account_id, &tgt.region).await;
    let target = args.accounts.context(Account::Target, &tgt.account_id, &tgt.region).await;

    let source_cluster = rds::find_cluster(&source.rds(), src.cluster_id.as_str()).await?;
    let snapshots = managed_snapshots(&source, src.cluster_id.as_str(), args.limit).await?;
    let mut copy_list = Vec::new();
    for snap in managed_snapshots(&copies, src.cluster_id.as_str(), args.limit).await? {
        let id = snap["id"].as_str().unwrap_or_default().to_owned();
        let shared = rds::shared_with(&copies.rds(), &id).await?;
        let mut snap = snap;
        snap["sharedWith"] = json!(shared);
        copy_list.push(snap);
    }
    let target_rds = target.rds();
    let existing = rds::find_cluster(&target_rds, tgt.existing_cluster_id.as_str()).await?;
    let temp = rds::find_cluster(&target_rds, tgt.temp_cluster_id.as_str()).await?;
    // A restore test's cluster: there while a test runs, or kept after a failed one.
    let test_id = tgt.for_run(None, true)?.temp_cluster_id;
    let restore_test = rds::find_cluster(&target_rds, test_id.as_str()).await?;
    let all = target_rds
        .describe_db_clusters()
        .send()
        .await
        .map_err(|e| DrError::from_sdk("DescribeDBClusters", e))?;
    let old_prefix = format!("{}-old-", tgt.existing_cluster_id.as_str().to_ascii_lowercase());
    let old_clusters: Vec<_> = all
        .db_clusters()
        .iter()
        .filter(|c| {
            c.db_cluster_identifier().is_some_and(|id| id.to_ascii_lowercase().starts_with(&old_prefix))
        })
        .collect();
    let old: Vec<Value> = old_clusters.iter().map(|c| cluster_json(c)).collect();
    let kept: Vec<KeptCluster> = old_clusters.iter().filter_map(|c| kept(c, &tgt.region)).collect();
    let executions = match &tgt.state_machine_arn {
        Some(arn) if args.accounts.endpoint.is_none() => {
            let out = target
                .sfn()
                .list_executions()
                .state_machine_arn(arn.as_str())
                .max_results(5)
                .send()
                .await
                .map_err(|e| DrError::from_sdk("ListExecutions", e))?;
            json!(out
                .executions()
                .iter()
                .map(|e| json!({"name": e.name(), "status": e.status().as_str(), "startDate": e.start_date().to_string()}))
                .collect::<Vec<_>>())
        }
        Some(_) => json!(
            "not read from the emulator: the local engine runs inside `aurora-dr drill`; run it with \
             `--serve-api ADDR` and follow it with `aurora-dr watch --endpoint http://ADDR`"
        ),
        None => json!("not available: target.state_machine_arn is not configured"),
    };
    Ok(json!({
        "source": {
            "account": src.account_id.as_str(), "region": src.region.as_str(),
            "cluster": source_cluster.as_ref().map(cluster_json),
            "snapshots": snapshots,
        },
        "copies": {"account": src.account_id.as_str(), "region": tgt.region.as_str(), "snapshots": copy_list},
        "target": {
            "account": tgt.account_id.as_str(), "region": tgt.region.as_str(),
            "existing": existing.as_ref().map(cluster_json),
            "temporary": temp.as_ref().map(cluster_json),
            "restoreTest": restore_test.as_ref().map(cluster_json),
            "old": old,
            "kept": kept,
            "executions": executions,
        },
    }))
}

/// A renamed-away cluster, as a kept one with the commands that remove it.
fn kept(c: &aws_sdk_rds::types::DbCluster, region: &aurora_dr_core::ids::Region) -> Option<KeptCluster> {
    let id = c.db_cluster_identifier()?.parse().ok()?;
    let instances =
        c.db_cluster_members().iter().filter_map(|m| m.db_instance_identifier()?.parse().ok()).collect();
    let reason = if is_managed(c.tag_list()) {
        format!(
            "renamed away by run {}; its Terminate deletes it, so it stays only when that run failed first \
             (`aurora-dr cleanup` removes it)",
            tag_value(c.tag_list(), TAG_RUN_ID).unwrap_or("?")
        )
    } else {
        "no aurora-dr tags: a replaced cluster aurora-dr did not make (adopted), which it never deletes"
            .into()
    };
    Some(KeptCluster::new(id, instances, region.clone(), c.deletion_protection().unwrap_or(false), reason))
}

fn cluster_json(c: &aws_sdk_rds::types::DbCluster) -> Value {
    json!({
        "id": c.db_cluster_identifier(),
        "status": c.status(),
        "endpoint": c.endpoint(),
        "engine": c.engine(),
        "encrypted": c.storage_encrypted(),
        "runId": tag_value(c.tag_list(), TAG_RUN_ID),
        "managedByAuroraDr": is_managed(c.tag_list()),
        "members": c.db_cluster_members().iter().filter_map(|m| m.db_instance_identifier()).collect::<Vec<_>>(),
    })
}

/// aurora-dr's snapshots of a cluster in one place, newest first.
async fn managed_snapshots(ctx: &AwsContext, cluster: &str, limit: usize) -> DrResult<Vec<Value>> {
    let out = ctx
        .rds()
        .describe_db_cluster_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .map_err(|e| DrError::from_sdk("DescribeDBClusterSnapshots", e))?;
    let mut snaps: Vec<_> = out
        .db_cluster_snapshots()
        .iter()
        .filter(|s| is_managed(s.tag_list()) && tag_value(s.tag_list(), TAG_SOURCE_CLUSTER) == Some(cluster))
        .collect();
    snaps.sort_by_key(|s| std::cmp::Reverse(s.snapshot_create_time().map(|t| t.secs())));
    Ok(snaps
        .into_iter()
        .take(limit)
        .map(|s| {
            json!({
                "id": s.db_cluster_snapshot_identifier(),
                "status": s.status(),
                "created": s.snapshot_create_time().map(|t| t.to_string()),
                "encrypted": s.storage_encrypted(),
                "kmsKeyId": s.kms_key_id(),
                "runId": tag_value(s.tag_list(), TAG_RUN_ID),
            })
        })
        .collect())
}

/// The report as text.
pub fn render(r: &Value) -> String {
    render_source(r) + &render_target(r)
}

fn text(v: &Value) -> String {
    v.as_str().map(str::to_owned).unwrap_or_else(|| "-".into())
}

fn cluster_line(v: &Value) -> String {
    let s = text;
    if v.is_null() {
        "none".to_owned()
    } else {
        format!(
            "{} {} {} (run {}, instances {})",
            s(&v["id"]),
            s(&v["status"]),
            s(&v["endpoint"]),
            s(&v["runId"]),
            v["members"].as_array().map(|m| m.len()).unwrap_or(0)
        )
    }
}

fn snapshot_lines(v: &Value) -> String {
    let s = text;
    let list = v.as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        return "    none\n".into();
    }
    list.iter()
        .map(|x| {
            let shared = x["sharedWith"]
                .as_array()
                .map(|a| format!(" shared with {}", a.iter().map(s).collect::<Vec<_>>().join(",")));
            format!(
                "    {} {} {}{}\n",
                s(&x["id"]),
                s(&x["status"]),
                s(&x["created"]),
                shared.unwrap_or_default()
            )
        })
        .collect()
}

/// The source account's section of a report.
fn render_source(r: &Value) -> String {
    let src = &r["source"];
    format!(
        "source {} {}\n  cluster: {}\n  snapshots:\n{}",
        text(&src["account"]),
        text(&src["region"]),
        cluster_line(&src["cluster"]),
        snapshot_lines(&src["snapshots"])
    )
}

/// A target's sections of a report: its copies and its DR side.
fn render_target(r: &Value) -> String {
    let s = text;
    let cluster = cluster_line;
    let cp = &r["copies"];
    let tgt = &r["target"];
    let old: Vec<String> = tgt["old"].as_array().cloned().unwrap_or_default().iter().map(cluster).collect();
    let kept: String = tgt["kept"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|k| {
            let commands: Vec<String> = k["removeCommands"]
                .as_array()
                .map(|c| c.iter().map(|x| format!("      {}\n", s(x))).collect())
                .unwrap_or_default();
            format!(
                "    {}: {}\n    remove with:\n{}",
                s(&k["clusterId"]),
                s(&k["reason"]),
                commands.concat()
            )
        })
        .collect();
    let executions = match &tgt["executions"] {
        Value::Array(list) => list
            .iter()
            .map(|e| format!("    {} {} {}\n", s(&e["name"]), s(&e["status"]), s(&e["startDate"])))
            .collect::<String>(),
        other => format!("    {}\n", s(other)),
    };
    format!(
        "copies {} {}\n{}target {} {}\n  existing: {}\n  temporary: {}\n  restore test: {}\n  old: {}\n  kept clusters (running, not deleted by aurora-dr):\n{}  executions:\n{}",
        s(&cp["account"]),
        s(&cp["region"]),
        snapshot_lines(&cp["snapshots"]),
        s(&tgt["account"]),
        s(&tgt["region"]),
        cluster(&tgt["existing"]),
        cluster(&tgt["temporary"]),
        cluster(&tgt["restoreTest"]),
        if old.is_empty() { "none".into() } else { old.join("; ") },
        if kept.is_empty() { "    none\n".into() } else { kept },
        executions
    )
}
