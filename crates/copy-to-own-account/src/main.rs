//! CopyToOwnAccount Lambda: thin entry point; the logic is `aurora_dr_core::steps::copy_to_own_account`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    aurora_dr_core::lambda::serve(aurora_dr_core::steps::copy_to_own_account::handle).await
}
