//! Helpers of the end-to-end tests: a private emulator, a drill config on
//! disk, and clients of either account to inspect the result.

use std::path::PathBuf;

use aurora_dr_cli::config::Config;
use aurora_dr_cli::drill::{self, DrillArgs, DrillReport};
use aurora_dr_core::clients::AwsContext;
use aurora_dr_emulator::{Emulator, EmulatorConfig};

/// The example configuration of the repository.
pub const CONFIG: &str = include_str!("../examples/drill.toml");
/// The example with two DR targets: A (222222222222, us-west-1) and B
/// (333333333333, eu-west-1).
pub const MULTI_TARGET_CONFIG: &str = include_str!("../examples/multi-target.toml");

/// A drill environment: its own emulator and config file, removed on drop.
pub struct DrillEnv {
    pub emulator: Emulator,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub config: Config,
}

impl DrillEnv {
    pub async fn start(config_text: &str) -> Self {
        let emulator = Emulator::start(EmulatorConfig::default()).await.expect("emulator starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("drill.toml");
        std::fs::write(&config_path, config_text).expect("config written");
        let config = Config::parse(config_text).expect("valid config");
        Self { emulator, dir, config_path, config }
    }

    pub fn args(&self, runs: usize) -> DrillArgs {
        DrillArgs {
            config: self.config_path.clone(),
            endpoint: Some(self.emulator.url().to_owned()),
            seed: true,
            json: true,
            time_scale: 0.0001,
            runs,
            html: Some(self.dir.path().join("timeline.html")),
            latency: 0.0,
            own_copy: false,
            state_machines: None,
            restore_test: false,
            durations: None,
            size_gib: None,
            serve_api: None,
        }
    }

    /// The operator commands' account options for this environment's emulator.
    pub fn accounts(&self) -> aurora_dr_cli::accounts::AccountArgs {
        aurora_dr_cli::accounts::AccountArgs {
            endpoint: Some(self.emulator.url().to_owned()),
            ..Default::default()
        }
    }

    /// `aurora-dr status --json` against this environment's emulator.
    pub async fn status(&self) -> serde_json::Value {
        let args = aurora_dr_cli::status::StatusArgs {
            config: self.config_path.clone(),
            accounts: self.accounts(),
            json: true,
            limit: 5,
        };
        aurora_dr_cli::status::collect(&args, &self.config).await.expect("status")
    }

    pub async fn drill(&self, runs: usize) -> DrillReport {
        drill::execute(&self.args(runs), &self.config).await.expect("drill ran")
    }

    /// Clients of the source account in the target region.
    pub async fn source_in_target_region(&self) -> AwsContext {
        let c = &self.config;
        drill::setup::account_context(self.emulator.url(), &c.source.account_id, &c.target.region, None).await
    }

    pub async fn source(&self) -> AwsContext {
        let c = &self.config;
        drill::setup::account_context(self.emulator.url(), &c.source.account_id, &c.source.region, None).await
    }

    pub async fn target(&self) -> AwsContext {
        let c = &self.config;
        drill::setup::account_context(self.emulator.url(), &c.target.account_id, &c.target.region, None).await
    }
}

/// Statuses of a change in progress: the emulator finishes one after a few
/// describe calls of the resource (`Latency::for_tests`), as RDS does after
/// a while; a deleted cluster or instance stays listed `deleting` until then.
pub const TRANSITIONAL: [&str; 5] = ["creating", "renaming", "modifying", "copying", "deleting"];

/// Identifiers of every cluster an account has in a region, once none is
/// mid-change (described at most 10 times until none is in a
/// [`TRANSITIONAL`] status).
pub async fn cluster_ids(ctx: &AwsContext) -> Vec<String> {
    let rds = ctx.rds();
    let mut ids = Vec::new();
    for _ in 0..10 {
        let out = rds.describe_db_clusters().send().await.expect("DescribeDBClusters");
        ids = out.db_clusters().iter().filter_map(|c| c.db_cluster_identifier().map(str::to_owned)).collect();
        if !out.db_clusters().iter().any(|c| c.status().is_some_and(|s| TRANSITIONAL.contains(&s))) {
            break;
        }
    }
    ids
}

/// Identifiers of every instance an account has in a region, once none is
/// mid-change (as [`cluster_ids`]).
pub async fn instance_ids(ctx: &AwsContext) -> Vec<String> {
    let rds = ctx.rds();
    let mut ids = Vec::new();
    for _ in 0..10 {
        let out = rds.describe_db_instances().send().await.expect("DescribeDBInstances");
        ids =
            out.db_instances().iter().filter_map(|i| i.db_instance_identifier().map(str::to_owned)).collect();
        if !out
            .db_instances()
            .iter()
            .any(|i| i.db_instance_status().is_some_and(|s| TRANSITIONAL.contains(&s)))
        {
            break;
        }
    }
    ids
}

// ---------------------------------------------------------------------------
// Fault, bad-input and security suites (tests/faults.rs, bad_inputs.rs,
// security.rs).

/// One resource of an account, as the suites compare them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Resource {
    /// `cluster`, `instance` or `snapshot`.
    pub kind: &'static str,
    pub id: String,
    pub status: String,
    /// The `aurora-dr:run-id` tag, if any.
    pub run_id: Option<String>,
    /// Cluster: its members; instance: its cluster; snapshot: `encrypted:<key>`.
    pub detail: Vec<String>,
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({}", self.kind, self.id, self.status)?;
        if let Some(r) = &self.run_id {
            write!(f, ", run {r}")?;
        }
        write!(f, ")")
    }
}

/// Every cluster, instance and own cluster snapshot of an account in a region.
pub async fn resources(ctx: &AwsContext) -> Vec<Resource> {
    use aurora_dr_core::rds::{TAG_RUN_ID, tag_value};
    let rds = ctx.rds();
    let mut all = Vec::new();
    let clusters = rds.describe_db_clusters().send().await.expect("DescribeDBClusters");
    for c in clusters.db_clusters() {
        let mut detail: Vec<String> = c
            .db_cluster_members()
            .iter()
            .filter_map(|m| m.db_instance_identifier().map(str::to_owned))
            .collect();
        detail.sort();
        detail.push(format!("deletion-protection:{}", c.deletion_protection().unwrap_or(false)));
        detail.push(format!("arn:{}", c.db_cluster_arn().unwrap_or_default()));
        all.push(Resource {
            kind: "cluster",
            id: c.db_cluster_identifier().unwrap_or_default().to_owned(),
            status: c.status().unwrap_or_default().to_owned(),
            run_id: tag_value(c.tag_list(), TAG_RUN_ID).map(str::to_owned),
            detail,
        });
    }
    let instances = rds.describe_db_instances().send().await.expect("DescribeDBInstances");
    for i in instances.db_instances() {
        all.push(Resource {
            kind: "instance",
            id: i.db_instance_identifier().unwrap_or_default().to_owned(),
            status: i.db_instance_status().unwrap_or_default().to_owned(),
            run_id: tag_value(i.tag_list(), TAG_RUN_ID).map(str::to_owned),
            detail: i.db_cluster_identifier().map(str::to_owned).into_iter().collect(),
        });
    }
    // Manual snapshots only: automated ones (`rds:...`) are RDS's own backups.
    let snapshots = rds
        .describe_db_cluster_snapshots()
        .snapshot_type("manual")
        .send()
        .await
        .expect("DescribeDBClusterSnapshots");
    for s in snapshots.db_cluster_snapshots() {
        let key = s.kms_key_id().unwrap_or("none");
        all.push(Resource {
            kind: "snapshot",
            id: s.db_cluster_snapshot_identifier().unwrap_or_default().to_owned(),
            status: s.status().unwrap_or_default().to_owned(),
            run_id: tag_value(s.tag_list(), TAG_RUN_ID).map(str::to_owned),
            detail: vec![format!("encrypted:{}:{key}", s.storage_encrypted().unwrap_or(false))],
        });
    }
    all.sort();
    all
}

/// What a drill environment holds in the three places the pipeline writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// Source account, source region.
    pub source: Vec<Resource>,
    /// Source account, target region (the copies).
    pub copies: Vec<Resource>,
    /// Target account, target region.
    pub target: Vec<Resource>,
}

impl Inventory {
    /// Every resource with the place it is in.
    pub fn all(&self) -> Vec<(&'static str, &Resource)> {
        self.source
            .iter()
            .map(|r| ("source", r))
            .chain(self.copies.iter().map(|r| ("copies", r)))
            .chain(self.target.iter().map(|r| ("target", r)))
            .collect()
    }
}

impl DrillEnv {
    /// Like [`DrillEnv::start`], with an emulator configured by the caller
    /// (latency, faults armed before the first request).
    pub async fn start_with(config_text: &str, emulator: EmulatorConfig) -> Self {
        let emulator = Emulator::start(emulator).await.expect("emulator starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("drill.toml");
        std::fs::write(&config_path, config_text).expect("config written");
        let config = Config::parse(config_text).expect("valid config");
        Self { emulator, dir, config_path, config }
    }

    /// Replaces the configuration (file and parsed form) for the next drill.
    pub fn set_config(&mut self, config_text: &str) {
        std::fs::write(&self.config_path, config_text).expect("config written");
        self.config = Config::parse(config_text).expect("valid config");
    }

    /// The resources of the three places once nothing is mid-change: the
    /// emulator finishes a change after a number of describe calls, so this
    /// describes (at most 10 times) until no resource is in a [`TRANSITIONAL`]
    /// status (a deleted one is then gone; a resource stuck by a fault rule
    /// stays as it is).
    pub async fn settled_inventory(&self) -> Inventory {
        let busy = |r: &Resource| TRANSITIONAL.contains(&r.status.as_str());
        let mut inv = self.inventory().await;
        for _ in 0..10 {
            if !inv.all().iter().any(|(_, r)| busy(r)) {
                break;
            }
            inv = self.inventory().await;
        }
        inv
    }

    /// The resources of the three places.
    pub async fn inventory(&self) -> Inventory {
        Inventory {
            source: resources(&self.source().await).await,
            copies: resources(&self.source_in_target_region().await).await,
            target: resources(&self.target().await).await,
        }
    }

    /// A DR copy made before this test: cluster `existing_cluster_id` with
    /// instance `existing_instance_id` in the target account, tagged as an
    /// earlier aurora-dr run's (`run-earlier`), available.
    pub async fn seed_existing_dr_cluster(&self) {
        use aurora_dr_core::rds::{MANAGED_BY, TAG_MANAGED_BY, TAG_RUN_ID};
        use aws_sdk_rds::types::Tag;
        self.seed_dr_cluster(&[
            Tag::builder().key(TAG_MANAGED_BY).value(MANAGED_BY).build(),
            Tag::builder().key(TAG_RUN_ID).value("run-earlier").build(),
        ])
        .await;
    }

    /// A DR copy made by hand before aurora-dr: the same cluster and
    /// instance, without aurora-dr's tags (another team's tag only).
    pub async fn seed_hand_made_dr_cluster(&self) {
        use aws_sdk_rds::types::Tag;
        self.seed_dr_cluster(&[Tag::builder().key("team").value("dba").build()]).await;
    }

    async fn seed_dr_cluster(&self, tags: &[aws_sdk_rds::types::Tag]) {
        let t = &self.config.target;
        let rds = self.target().await.rds();
        rds.create_db_cluster()
            .db_cluster_identifier(t.existing_cluster_id.as_str())
            .engine(&t.engine)
            .master_username("dr_admin")
            .master_user_password("seeded-Dr-copy-1")
            .storage_encrypted(true)
            .set_tags(Some(tags.to_vec()))
            .send()
            .await
            .expect("CreateDBCluster (existing DR copy)");
        rds.create_db_instance()
            .db_instance_identifier(t.existing_instance_id.as_str())
            .db_cluster_identifier(t.existing_cluster_id.as_str())
            .engine(&t.engine)
            .db_instance_class(&t.instance_class)
            .set_tags(Some(tags.to_vec()))
            .send()
            .await
            .expect("CreateDBInstance (existing DR copy)");
        // Let the emulator's simulated creation finish.
        for _ in 0..10 {
            let r = resources(&self.target().await).await;
            if r.iter().all(|x| x.status == "available") {
                return;
            }
        }
        panic!("the seeded DR copy never became available");
    }
}

/// One message an SNS topic delivered to a [`NotificationSink`].
#[derive(Debug, Clone)]
pub struct Notification {
    pub topic_arn: String,
    /// The `Message` field, parsed as JSON (`Null` when it is not JSON).
    pub message: serde_json::Value,
    pub raw: String,
}

/// An HTTP endpoint that SNS topics deliver to, so tests read full messages
/// (the emulator's call log cuts parameters at 256 characters).
pub struct NotificationSink {
    pub url: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<Notification>>>,
    notify: std::sync::Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl NotificationSink {
    pub async fn start() -> Self {
        use std::sync::{Arc, Mutex};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/sink", listener.local_addr().expect("addr"));
        let received: Arc<Mutex<Vec<Notification>>> = Arc::default();
        let notify = Arc::new(tokio::sync::Notify::new());
        let (r, n) = (Arc::clone(&received), Arc::clone(&notify));
        let app = axum::Router::new().route(
            "/sink",
            axum::routing::post(move |body: axum::body::Bytes| {
                let (r, n) = (Arc::clone(&r), Arc::clone(&n));
                async move {
                    let raw = String::from_utf8_lossy(&body).into_owned();
                    let v: serde_json::Value = serde_json::from_str(&raw).unwrap_or_default();
                    let message = v["Message"]
                        .as_str()
                        .and_then(|m| serde_json::from_str(m).ok())
                        .unwrap_or(serde_json::Value::Null);
                    let topic_arn = v["TopicArn"].as_str().unwrap_or_default().to_owned();
                    r.lock().expect("lock").push(Notification { topic_arn, message, raw });
                    n.notify_waiters();
                    "ok"
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, received, notify, task }
    }

    /// Creates (idempotently) topic `name` with `ctx`'s account and region
    /// and subscribes this sink to it; returns the topic ARN.
    pub async fn subscribe(&self, ctx: &AwsContext, name: &str) -> String {
        let sns = ctx.sns();
        let topic = sns.create_topic().name(name).send().await.expect("CreateTopic");
        let arn = topic.topic_arn().expect("topic arn").to_owned();
        sns.subscribe().topic_arn(&arn).protocol("http").endpoint(&self.url).send().await.expect("Subscribe");
        arn
    }

    pub fn received(&self) -> Vec<Notification> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits (at most `within`) until `n` messages arrived; returns them all.
    pub async fn wait_for(&self, n: usize, within: std::time::Duration) -> Vec<Notification> {
        let wait = async {
            loop {
                let notified = self.notify.notified();
                if self.received().len() >= n {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(within, wait).await;
        self.received()
    }
}

impl Drop for NotificationSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---------------------------------------------------------------------------
// The state machines as written (statemachines/*.asl.json).

/// A side's state machine definition, as deployed.
pub fn state_machine(side: aurora_dr_core::steps::Side) -> serde_json::Value {
    let text = match side {
        aurora_dr_core::steps::Side::Source => include_str!("../statemachines/source.asl.json"),
        aurora_dr_core::steps::Side::Target => include_str!("../statemachines/target.asl.json"),
    };
    serde_json::from_str(text).expect("the state machine is JSON")
}

/// One Task state of a state machine, nested Maps and Parallels included.
#[derive(Debug, Clone)]
pub struct TaskState {
    pub name: String,
    pub state: serde_json::Value,
}

impl TaskState {
    /// Whether it invokes its function through the `lambda:invoke`
    /// integration (a callback wait: `lambda:invoke.waitForTaskToken`).
    fn integrated(&self) -> bool {
        self.state["Resource"].as_str().is_some_and(|r| r.starts_with("arn:aws:states:::lambda:invoke"))
    }

    /// The `${...}` its `Resource` names, or for the `lambda:invoke`
    /// integration its `Parameters.FunctionName`.
    pub fn substitution(&self) -> Option<&str> {
        let named = if self.integrated() {
            &self.state["Parameters"]["FunctionName"]
        } else {
            &self.state["Resource"]
        };
        named.as_str()?.strip_prefix("${")?.strip_suffix('}')
    }

    /// The input its function gets when the state's input is `payload`:
    /// the state's `Parameters` (for the `lambda:invoke` integration its
    /// `Payload`) with `"run.$": "$"` bound to it and a task token for
    /// `$$.Task.Token`, else `payload`.
    pub fn input_for(&self, payload: &serde_json::Value) -> serde_json::Value {
        let params =
            if self.integrated() { &self.state["Parameters"]["Payload"] } else { &self.state["Parameters"] };
        let Some(params) = params.as_object() else { return payload.clone() };
        params
            .iter()
            .map(|(k, v)| match (k.strip_suffix(".$"), v.as_str()) {
                (Some(key), Some("$")) => (key.to_owned(), payload.clone()),
                (Some(key), Some("$$.Task.Token")) => (key.to_owned(), "AAAAtesttoken".into()),
                _ => (k.clone(), v.clone()),
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// Every Task state of a side's machine.
pub fn task_states(side: aurora_dr_core::steps::Side) -> Vec<TaskState> {
    fn walk(states: &serde_json::Value, out: &mut Vec<TaskState>) {
        for (name, state) in states.as_object().into_iter().flatten() {
            if state["Type"] == "Task" {
                out.push(TaskState { name: name.clone(), state: state.clone() });
            }
            for key in ["Iterator", "ItemProcessor"] {
                walk(&state[key]["States"], out);
            }
            for branch in state["Branches"].as_array().into_iter().flatten() {
                walk(&branch["States"], out);
            }
        }
    }
    let mut out = Vec::new();
    walk(&state_machine(side)["States"], &mut out);
    out
}

/// The execution's events, each Distributed Map's child executions' events
/// (in the order they started) right after the `MapRunStarted` that started
/// them: one sequence for a run whose clusters run in child executions.
pub fn flat_history(
    engine: &aurora_dr_asl::Engine,
    exec: &aurora_dr_asl::Execution,
) -> Vec<aurora_dr_asl::HistoryEvent> {
    let mut out = Vec::new();
    for event in exec.history() {
        let run = event.details.map_run_arn.clone();
        out.push(event);
        if let Some(run) = run {
            let mut children = engine.map_run_executions(&run);
            children.sort_by_key(|c| c.start_date());
            for child in children {
                out.extend(flat_history(engine, &child));
            }
        }
    }
    out
}
