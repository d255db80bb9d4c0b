//! How the operator's commands (`status`, `cleanup`, `deploy-params`,
//! `preflight`, `watch`) reach the two accounts: with the operator's own
//! credentials, one profile per account, as the AWS CLI uses them; no role
//! has to exist for it. With `--assume-role NAME` the command first assumes
//! `NAME` in each account from those credentials (a read-only role of your
//! own, for instance); with `--endpoint` it talks to a local emulator (for
//! `watch`: a drill's Step Functions API) instead.

use aurora_dr_core::clients::{AwsContext, ClientOptions};
use aurora_dr_core::ids::{AccountId, Region};

/// The side whose account a call is made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Account {
    Source,
    Target,
}

/// The operator's credentials for each account: a profile per account and
/// an optional role to assume in each.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ProfileArgs {
    /// AWS profile (~/.aws/config) of the source account; default: the usual
    /// credential chain (AWS_PROFILE, environment, ...).
    #[arg(long, value_name = "PROFILE")]
    pub source_profile: Option<String>,
    /// AWS profile of the target account; default: the usual credential chain.
    #[arg(long, value_name = "PROFILE")]
    pub target_profile: Option<String>,
    /// Assume a role of this name in each account first (from the
    /// profile's credentials); none by default.
    #[arg(long, value_name = "NAME")]
    pub assume_role: Option<String>,
}

impl ProfileArgs {
    /// Clients of `side`'s account in `region`, on AWS, with that side's
    /// profile (and the role of `--assume-role`).
    pub async fn context(&self, side: Account, account: &AccountId, region: &Region) -> AwsContext {
        let profile = match side {
            Account::Source => self.source_profile.as_deref(),
            Account::Target => self.target_profile.as_deref(),
        };
        let mut options = ClientOptions::in_region(region.clone()).with_profile(profile);
        if let Some(role) = &self.assume_role {
            options = options.as_account(account, role);
        }
        AwsContext::load(&options).await
    }
}

#[derive(Debug, Clone, Default, clap::Args)]
pub struct AccountArgs {
    #[command(flatten)]
    pub profiles: ProfileArgs,
    /// A local emulator instead of AWS.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
}

impl AccountArgs {
    /// Clients of `account` (the source's or the target's) in `region`.
    pub async fn context(&self, side: Account, account: &AccountId, region: &Region) -> AwsContext {
        if let Some(url) = &self.endpoint {
            return crate::drill::setup::account_context(url, account, region, None).await;
        }
        self.profiles.context(side, account, region).await
    }
}
