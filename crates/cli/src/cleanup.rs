//! `aurora-dr cleanup`: removes what the pipeline created, which outlives
//! its stacks (`sam delete` removes functions, machines and topics, not the
//! clusters and snapshots the functions made).
//!
//! What it lists, on both sides, by aurora-dr's tags and names only:
//! - source account, source region: the tool's snapshots of each configured
//!   source cluster (manual, owned, `managed-by=aurora-dr`,
//!   `source-cluster=<cluster>`, named `{prefix}-{cluster}-{stamp}`: the rule
//!   retention applies, [`tool_snapshot_time`]);
//! - source account, target region: the encrypted copies, by the same rule;
//! - target account, target region: its own copies (target-owned
//!   encryption), and the clusters under each pair's temporary name, its
//!   restore test's `{temp}-test` name and
//!   `{existing}-old-*` names that carry `managed-by=aurora-dr`, with their
//!   instances; the DR cluster itself under the existing name only with
//!   `--include-dr-cluster`.
//!
//! Many DR targets (`[[targets]]`): the copies in each target region and
//! each target's account and region, one plan for all.
//!
//! A cluster under one of those names without aurora-dr's tags (an adopted,
//! hand-made one) is listed as kept, with the commands that remove it, and
//! never touched; nor is the source cluster, nor anything else untagged.
//! Nothing is deleted before the operator confirms: typing `delete` at the
//! prompt, or `--yes`. With `--dry-run`, or without a terminal and without
//! `--yes`, the command lists and stops (exit 0).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use aurora_dr_core::clients::AwsContext;
use aurora_dr_core::ids::{AccountId, ClusterId, Region};
use aurora_dr_core::payload::KeptCluster;
use aurora_dr_core::rds;
use aurora_dr_core::steps::apply_retention::tool_snapshot_time;
use aurora_dr_core::{DrError, DrResult};
use aws_sdk_rds::types::DbCluster;
use serde::Serialize;

use crate::accounts::{Account, AccountArgs};
use crate::config::Config;

#[derive(Debug, Clone, clap::Args)]
pub struct CleanupArgs {
    /// The TOML configuration (see examples/drill.toml). With `[[targets]]`
    /// every target's account and region and every target region's copies
    /// (one --target-profile reaches every target account: use
    /// --assume-role, or a file per target).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    #[command(flatten)]
    pub accounts: AccountArgs,
    /// Delete without asking (after listing).
    #[arg(long, conflicts_with = "dry_run")]
    pub yes: bool,
    /// Only list what would be deleted (also the default without a terminal).
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete the DR cluster serving under the existing name (when aurora-dr made it).
    #[arg(long)]
    pub include_dr_cluster: bool,
    /// Keep a final snapshot `{cluster}-final` of each deleted cluster.
    #[arg(long)]
    pub final_snapshot: bool,
}

/// Where a resource is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Place {
    pub side: &'static str,
    pub account: String,
    pub region: String,
}

/// One resource the pipeline created, to delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// `cluster` (with its instances) or `snapshot`.
    pub kind: &'static str,
    pub id: String,
    pub place: Place,
    /// Cluster: its instances; snapshot: none.
    pub instances: Vec<String>,
    /// Why it is the pipeline's.
    pub why: String,
}

/// What cleanup found.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub delete: Vec<Item>,
    /// Clusters under the pipeline's names without its tags: never touched.
    pub kept: Vec<KeptCluster>,
    /// The DR cluster, listed but kept without `--include-dr-cluster`.
    pub serving: Vec<String>,
}

/// Lists what the pipeline created in the three places; with many DR
/// targets (`[[targets]]`), the copies in each target region and each
/// target's account and region in turn.
pub async fn plan(args: &CleanupArgs, config: &Config) -> DrResult<Plan> {
    let src = &config.source;
    let mut plan = Plan::default();
    let mut places = vec![("source", Account::Source, &src.account_id, &src.region, None)];
    let mut regions: Vec<&Region> = Vec::new();
    for t in &config.targets {
        if !regions.contains(&&t.region) {
            regions.push(&t.region);
        }
    }
    places.extend(regions.into_iter().map(|r| ("copies", Account::Source, &src.account_id, r, None)));
    places.extend(
        config.targets.iter().map(|t| ("target", Account::Target, &t.account_id, &t.region, Some(t))),
    );
    for (side, who, account, region, target) in places {
        let ctx = args.accounts.context(who, account, region).await;
        let place = Place { side, account: account.to_string(), region: region.to_string() };
        if let Some(target) = target {
            clusters(&ctx, &config.for_target(target), args.include_dr_cluster, &place, &mut plan).await?;
        }
        snapshots(&ctx, config, account, &place, &mut plan).await?;
    }
    Ok(plan)
}

async fn snapshots(
    ctx: &AwsContext,
    config: &Config,
    account: &AccountId,
    place: &Place,
    plan: &mut Plan,
) -> DrResult<()> {
    let all = rds::list_manual_cluster_snapshots(&ctx.rds(), None).await?;
    for snap in &all {
        let Some(id) = snap.db_cluster_snapshot_identifier() else { continue };
        let cluster = config
            .source
            .cluster_ids
            .iter()
            .find(|c| tool_snapshot_time(snap, account, c, &config.source.snapshot_prefix).is_some());
        if let Some(cluster) = cluster {
            plan.delete.push(Item {
                kind: "snapshot",
                id: id.to_owned(),
                place: place.clone(),
                instances: Vec::new(),
                why: format!("aurora-dr's snapshot of {cluster} (tags and name)"),
            });
        }
    }
    Ok(())
}

async fn clusters(
    ctx: &AwsContext,
    config: &Config,
    include_serving: bool,
    place: &Place,
    plan: &mut Plan,
) -> DrResult<()> {
    let out = ctx
        .rds()
        .describe_db_clusters()
        .send()
        .await
        .map_err(|e| DrError::from_sdk("DescribeDBClusters", e))?;
    let region: Region = config.target.region.clone();
    for c in out.db_clusters() {
        let Some(id) = c.db_cluster_identifier() else { continue };
        let lower = id.to_ascii_lowercase();
        // Never the source cluster, whatever account and region it shares.
        if config.source.account_id == config.target.account_id
            && config.source.region == config.target.region
            && config.source.cluster_ids.iter().any(|s| s.as_str() == lower)
        {
            continue;
        }
        let name = config.target.pairs.iter().find_map(|p| {
            let existing = p.existing_cluster_id.as_str();
            if lower == existing {
                Some("serving")
            } else if lower == p.temp_cluster_id.as_str() {
                Some("temporary")
            } else if p.restore_test_cluster_id().is_ok_and(|t| lower == t.as_str()) {
                // A failed restore test's cluster, kept with keep_failed_temp_cluster.
                Some("restore test")
            } else if lower.starts_with(&format!("{existing}-old-")) {
                Some("renamed away")
            } else {
                None
            }
        });
        let Some(role) = name else { continue };
        let instances: Vec<String> = c
            .db_cluster_members()
            .iter()
            .filter_map(|m| m.db_instance_identifier().map(str::to_owned))
            .collect();
        if !rds::is_managed(c.tag_list()) {
            if let Ok(cluster_id) = id.parse::<ClusterId>() {
                plan.kept.push(KeptCluster::new(
                    cluster_id,
                    instances.iter().filter_map(|i| i.parse().ok()).collect(),
                    region.clone(),
                    c.deletion_protection().unwrap_or(false),
                    format!("{role} cluster without aurora-dr's tags: aurora-dr did not make it and never deletes it"),
                ));
            }
            continue;
        }
        if role == "serving" && !include_serving {
            plan.serving.push(id.to_owned());
            continue;
        }
        plan.delete.push(Item {
            kind: "cluster",
            id: id.to_owned(),
            place: place.clone(),
            instances,
            why: format!(
                "{role} cluster of run {} (aurora-dr's tags)",
                rds::tag_value(c.tag_list(), rds::TAG_RUN_ID).unwrap_or("?")
            ),
        });
    }
    Ok(())
}

/// The plan as text.
pub fn render(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.delete.is_empty() {
        out.push_str("nothing of aurora-dr's to delete\n");
    } else {
        out.push_str(&format!("aurora-dr created these ({}), to delete:\n", plan.delete.len()));
        for i in &plan.delete {
            let members = if i.instances.is_empty() {
                String::new()
            } else {
                format!(" (instances {})", i.instances.join(", "))
            };
            out.push_str(&format!(
                "  {} {} {}  {} {}{members}: {}\n",
                i.place.side, i.place.account, i.place.region, i.kind, i.id, i.why
            ));
        }
    }
    for id in &plan.serving {
        out.push_str(&format!("kept: the DR cluster {id} (serving; --include-dr-cluster deletes it too)\n"));
    }
    for k in &plan.kept {
        out.push_str(&format!(
            "kept, never touched: {} ({})\n  remove it yourself with:\n",
            k.cluster_id, k.reason
        ));
        for c in &k.remove_commands {
            out.push_str(&format!("    {c}\n"));
        }
    }
    out
}

/// Deletes the plan's items: clusters (instances first), then snapshots.
pub async fn execute(args: &CleanupArgs, config: &Config, plan: &Plan) -> DrResult<Vec<String>> {
    let mut done = Vec::new();
    let mut items: Vec<&Item> = plan.delete.iter().collect();
    items.sort_by_key(|i| i.kind != "cluster");
    for item in items {
        // The item's own account: the source's, or its target's (many targets).
        let (who, account) = if item.place.side == "target" {
            let account = config
                .targets
                .iter()
                .map(|t| &t.account_id)
                .find(|a| a.as_str() == item.place.account)
                .ok_or_else(|| {
                    DrError::invalid_input(format!(
                        "{}: account {} is no target",
                        item.id, item.place.account
                    ))
                })?;
            (Account::Target, account)
        } else {
            (Account::Source, &config.source.account_id)
        };
        let region: Region = item
            .place
            .region
            .parse()
            .map_err(|e| DrError::invalid_input(format!("region of {}: {e}", item.id)))?;
        let client = args.accounts.context(who, account, &region).await.rds();
        match item.kind {
            "cluster" => {
                // Checked again just before: only a cluster that still carries the tags.
                let Some(cluster) = rds::find_cluster(&client, &item.id).await? else { continue };
                if !rds::is_managed(cluster.tag_list()) {
                    return Err(DrError::Unsafe(format!("{} lost aurora-dr's tags; not deleted", item.id)));
                }
                delete_cluster(&client, &cluster, &item.id, args.final_snapshot).await?;
            }
            _ => rds::delete_cluster_snapshot(&client, &item.id).await?,
        }
        let line =
            format!("deleted {} {} ({} {})", item.kind, item.id, item.place.account, item.place.region);
        println!("  {line}");
        done.push(line);
    }
    Ok(done)
}

async fn delete_cluster(
    client: &aws_sdk_rds::Client,
    cluster: &DbCluster,
    id: &str,
    final_snapshot: bool,
) -> DrResult<()> {
    for m in cluster.db_cluster_members() {
        if let Some(i) = m.db_instance_identifier() {
            rds::delete_instance(client, i).await?;
        }
    }
    rds::delete_cluster(client, cluster, id, final_snapshot).await
}

pub async fn run(args: CleanupArgs) -> ExitCode {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(2);
        }
    };
    let plan = match plan(&args, &config).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cleanup: {e} ({})", e.asl_name());
            return ExitCode::FAILURE;
        }
    };
    print!("{}", render(&plan));
    if plan.delete.is_empty() {
        return ExitCode::SUCCESS;
    }
    if args.dry_run || (!args.yes && !std::io::stdin().is_terminal()) {
        println!("cleanup: dry run, nothing deleted (confirm at a terminal, or pass --yes)");
        return ExitCode::SUCCESS;
    }
    if !args.yes {
        print!("Delete these {} resources? Type `delete` to confirm: ", plan.delete.len());
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        if std::io::stdin().lock().read_line(&mut answer).is_err() || answer.trim() != "delete" {
            eprintln!("cleanup: nothing deleted");
            return ExitCode::from(1);
        }
    }
    match execute(&args, &config, &plan).await {
        Ok(done) => {
            println!("cleanup: {} deleted (RDS finishes deleting in the background)", done.len());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cleanup: {e} ({}); run it again to continue", e.asl_name());
            ExitCode::FAILURE
        }
    }
}
