//! The one place AWS SDK clients are built.
//!
//! Every client of the project comes from an [`AwsContext`]: a region, the
//! normal credential chain (optionally narrowed to a role in another account
//! through `sts:AssumeRole`) and an optional endpoint override. The override
//! is the only difference between AWS, the local emulator and tests: when it
//! is not given explicitly, `AWS_ENDPOINT_URL` is honoured by the SDK loader.
//!
//! Every context carries the HTTPS client of [`https_client`] (hyper with
//! rustls on ring); the SDK crates are built without their own.

use aws_config::{BehaviorVersion, SdkConfig, sts::AssumeRoleProvider};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_types::region::Region as SdkRegion;

use crate::ids::{AccountId, Region};

/// How to reach AWS: region, optional endpoint, optional role to assume.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// Region for every client; `None` uses the SDK's region chain (`AWS_REGION`).
    pub region: Option<Region>,
    /// Endpoint for every service (the emulator). `None` keeps the SDK's own
    /// resolution, which honours `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// Role to assume before any call, e.g. `arn:aws:iam::222222222222:role/aurora-dr`.
    pub assume_role_arn: Option<String>,
    /// Endpoint for Step Functions only (the local engine's server), taking
    /// precedence over `endpoint_url` for that one service.
    pub sfn_endpoint_url: Option<String>,
    /// Fixed base credentials instead of the default chain (the emulator
    /// accepts any; a machine without an AWS account has none).
    pub static_credentials: Option<(String, String)>,
    /// A named profile of the shared AWS config and credentials files for
    /// the base credentials (the operator's own, per account).
    pub profile: Option<String>,
}

impl ClientOptions {
    /// Options for a region, everything else from the environment.
    pub fn in_region(region: Region) -> Self {
        Self { region: Some(region), ..Self::default() }
    }

    /// Sets the endpoint override.
    pub fn with_endpoint(mut self, endpoint_url: Option<String>) -> Self {
        self.endpoint_url = endpoint_url;
        self
    }

    /// Sets the Step Functions endpoint override.
    pub fn with_sfn_endpoint(mut self, url: Option<String>) -> Self {
        self.sfn_endpoint_url = url;
        self
    }

    /// Takes the base credentials (and, unless set, the region) from a named
    /// profile of `~/.aws/config` and `~/.aws/credentials`.
    pub fn with_profile(mut self, profile: Option<&str>) -> Self {
        self.profile = profile.map(str::to_owned);
        self
    }

    /// Uses fixed base credentials (for emulators).
    pub fn with_static_credentials(mut self, access_key: &str, secret_key: &str) -> Self {
        self.static_credentials = Some((access_key.to_owned(), secret_key.to_owned()));
        self
    }

    /// Acts as `role_name` in `account` (credentials from `sts:AssumeRole`).
    pub fn as_account(self, account: &AccountId, role_name: &str) -> Self {
        self.as_role(&format!("arn:aws:iam::{account}:role/{role_name}"))
    }

    /// Acts as the role with this ARN (credentials from `sts:AssumeRole`),
    /// e.g. a deployed function's execution role.
    pub fn as_role(mut self, role_arn: &str) -> Self {
        self.assume_role_arn = Some(role_arn.to_owned());
        self
    }
}

/// Loaded SDK configuration; hands out service clients.
#[derive(Debug, Clone)]
pub struct AwsContext {
    config: SdkConfig,
    sfn_endpoint_url: Option<String>,
}

impl AwsContext {
    /// Loads configuration once. Safe to call at Lambda start-up: nothing is
    /// fetched until the first request.
    pub async fn load(options: &ClientOptions) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(https_client());
        if let Some(region) = &options.region {
            loader = loader.region(SdkRegion::new(region.to_string()));
        }
        if let Some(url) = &options.endpoint_url {
            loader = loader.endpoint_url(url.clone());
        }
        if let Some(profile) = &options.profile {
            loader = loader.profile_name(profile);
        }
        if let Some((key, secret)) = &options.static_credentials {
            loader = loader.credentials_provider(aws_credential_types::Credentials::new(
                key.clone(),
                secret.clone(),
                None,
                None,
                "aurora-dr-static",
            ));
        }
        let base = loader.load().await;
        let config = match &options.assume_role_arn {
            None => base,
            Some(role) => {
                let provider = AssumeRoleProvider::builder(role.clone())
                    .session_name("aurora-dr")
                    .configure(&base)
                    .build()
                    .await;
                base.into_builder().credentials_provider(SharedCredentialsProvider::new(provider)).build()
            }
        };
        Self { config, sfn_endpoint_url: options.sfn_endpoint_url.clone() }
    }

    /// Lambda start-up: exactly what the Lambda environment provides, so the
    /// binary carries no other credential or region source (profiles,
    /// instance metadata, container and web-identity providers are never
    /// used there). Region from `AWS_REGION` (or `AWS_DEFAULT_REGION`),
    /// credentials from the execution role's `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, endpoint from
    /// `AWS_ENDPOINT_URL` when set (the emulator). Nothing is read or
    /// fetched before the first request, like [`AwsContext::load`].
    pub fn from_lambda_environment() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let mut builder = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(https_client())
            .retry_config(aws_smithy_types::retry::RetryConfig::standard())
            .credentials_provider(SharedCredentialsProvider::new(
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            ));
        if let Some(region) = var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")) {
            builder = builder.region(SdkRegion::new(region));
        }
        if let Some(url) = var("AWS_ENDPOINT_URL") {
            builder = builder.endpoint_url(url);
        }
        Self::from_config(builder.build())
    }

    /// Wraps an existing configuration (tests build one around a mock client).
    pub fn from_config(config: SdkConfig) -> Self {
        Self { config, sfn_endpoint_url: None }
    }

    /// The same credentials and endpoint in another region.
    pub fn in_region(&self, region: &Region) -> Self {
        let config = self.config.to_builder().region(SdkRegion::new(region.to_string())).build();
        Self { config, sfn_endpoint_url: self.sfn_endpoint_url.clone() }
    }

    /// The region clients of this context call, if one is set.
    pub fn region(&self) -> Option<&str> {
        self.config.region().map(|r| r.as_ref())
    }

    /// The underlying SDK configuration.
    pub fn sdk_config(&self) -> &SdkConfig {
        &self.config
    }

    pub fn rds(&self) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.config)
    }

    pub fn sns(&self) -> aws_sdk_sns::Client {
        aws_sdk_sns::Client::new(&self.config)
    }

    pub fn sfn(&self) -> aws_sdk_sfn::Client {
        let mut builder = aws_sdk_sfn::config::Builder::from(&self.config);
        if let Some(url) = &self.sfn_endpoint_url {
            builder = builder.endpoint_url(url.clone());
        }
        aws_sdk_sfn::Client::from_conf(builder.build())
    }

    pub fn kms(&self) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.config)
    }

    pub fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.config)
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.config)
    }

    pub fn secretsmanager(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.config)
    }
}

/// The HTTP(S) client of every AWS call: hyper with rustls on ring, the
/// platform's root certificates, plain HTTP for `http://` endpoints (the
/// emulator). Connections are pooled per client.
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}
