//! CompleteWait Lambda: thin entry point; the logic is `aurora_dr_core::steps::complete_wait`.
#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    aurora_dr_core::lambda::serve(aurora_dr_core::steps::complete_wait::handle).await
}
