//! CleanUpTempCluster Lambda: thin entry point; the logic is `aurora_dr_core::steps::clean_up_temp_cluster`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    aurora_dr_core::lambda::serve(aurora_dr_core::steps::clean_up_temp_cluster::handle).await
}
