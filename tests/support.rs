//! Helpers of the end-to-end tests: a private emulator, a drill config on
//! disk, and clients of either account to inspect the result.

use std::path::PathBuf;

use aurora_dr_cli::config::Config;
use aurora_dr_cli::drill::{self, DrillArgs, DrillReport};
use aurora_dr_core::clients::AwsContext;
use aurora_dr_emulator::{Emulator, EmulatorConfig};

/// The example configuration of the repository.
pub const CONFIG: &str = include_str!("../examples/drill.toml");

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
        }
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

/// Identifiers of every cluster an account has in a region.
pub async fn cluster_ids(ctx: &AwsContext) -> Vec<String> {
    let out = ctx.rds().describe_db_clusters().send().await.expect("DescribeDBClusters");
    out.db_clusters().iter().filter_map(|c| c.db_cluster_identifier().map(str::to_owned)).collect()
}

/// Identifiers of every instance an account has in a region.
pub async fn instance_ids(ctx: &AwsContext) -> Vec<String> {
    let out = ctx.rds().describe_db_instances().send().await.expect("DescribeDBInstances");
    out.db_instances().iter().filter_map(|c| c.db_instance_identifier().map(str::to_owned)).collect()
}
