//! RollBackSwap Lambda: thin entry point; the logic is `aurora_dr_core::steps::roll_back_swap`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    aurora_dr_core::lambda::serve(aurora_dr_core::steps::roll_back_swap::handle).await
}
