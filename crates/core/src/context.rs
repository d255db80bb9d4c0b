//! What a step runs with: AWS clients and the settings of its side.
//!
//! Lambdas build one [`StepContext`] at start-up from the environment; the
//! CLI builds one per side from its TOML file and an emulator endpoint. The
//! steps cannot tell the difference: endpoints, credentials and where the
//! database probes connect are all the context holds.

use std::sync::Arc;

use crate::clients::AwsContext;
use crate::error::{DrError, DrResult};
use crate::probe::{ProbeTarget, WriterEndpoint};
use crate::resolve::{EndpointResolver, SystemDns};
use crate::settings::{Origin, Reader, SettingsError, SourceSettings, TargetSettings};

/// One half of the pipeline: the source account and region (the production
/// cluster) or the target account and region (the DR copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Source,
    Target,
}

impl Side {
    /// `source` or `target`, as `SIDE`, logs, metrics and notifications write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Target => "target",
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which side a deployment is: chosen by the `SIDE` variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SideSettings {
    Source(SourceSettings),
    Target(TargetSettings),
}

impl SideSettings {
    /// The side these settings belong to.
    pub fn side(&self) -> Side {
        match self {
            Self::Source(_) => Side::Source,
            Self::Target(_) => Side::Target,
        }
    }

    /// Reads `SIDE` (`source` | `target`) and that side's settings.
    pub fn from_origin(origin: &Origin) -> Result<Self, SettingsError> {
        let side = match origin {
            Origin::Env(m) | Origin::Toml(m) => m.get("SIDE").cloned().unwrap_or_default(),
        };
        let mut r = Reader::new(origin);
        let settings = match side.as_str() {
            "source" => SourceSettings::read(&mut r).map(Self::Source),
            "target" => TargetSettings::read(&mut r).map(Self::Target),
            other => {
                return Err(SettingsError(vec![crate::settings::SettingError {
                    name: "SIDE".into(),
                    problem: format!("must be source or target (got {other:?})"),
                }]));
            }
        };
        r.finish()?;
        settings.ok_or_else(|| SettingsError(Vec::new()))
    }
}

/// Clients and settings for one side, where SanityCheck's probes connect
/// ([`ProbeTarget`]) and what answers which cluster an endpoint name
/// reaches ([`EndpointResolver`]).
#[derive(Debug, Clone)]
pub struct StepContext {
    pub aws: AwsContext,
    pub settings: SideSettings,
    pub probe_target: Arc<dyn ProbeTarget>,
    pub resolver: Arc<dyn EndpointResolver>,
}

impl StepContext {
    /// A context whose probes connect to each cluster's writer endpoint and
    /// whose endpoint names resolve through the system's DNS.
    pub fn new(aws: AwsContext, settings: SideSettings) -> Self {
        Self { aws, settings, probe_target: Arc::new(WriterEndpoint), resolver: Arc::new(SystemDns) }
    }

    /// The same context with endpoint names resolved by `resolver`.
    pub fn with_resolver(mut self, resolver: Arc<dyn EndpointResolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// The same context with the probes connecting where `target` says.
    pub fn with_probe_target(mut self, target: Arc<dyn ProbeTarget>) -> Self {
        self.probe_target = target;
        self
    }

    /// Lambda start-up: settings and clients from the environment (see
    /// [`AwsContext::from_lambda_environment`]).
    pub fn from_env() -> Result<Self, SettingsError> {
        let settings = SideSettings::from_origin(&Origin::process_env())?;
        Ok(Self::new(AwsContext::from_lambda_environment(), settings))
    }

    /// The source settings, or a named error when deployed on the other side.
    pub fn source(&self) -> DrResult<&SourceSettings> {
        match &self.settings {
            SideSettings::Source(s) => Ok(s),
            SideSettings::Target(_) => Err(wrong_side("source")),
        }
    }

    /// The target settings, or a named error when deployed on the other side.
    pub fn target(&self) -> DrResult<&TargetSettings> {
        match &self.settings {
            SideSettings::Target(t) => Ok(t),
            SideSettings::Source(_) => Err(wrong_side("target")),
        }
    }
}

fn wrong_side(want: &str) -> DrError {
    DrError::InvalidConfig { name: "SIDE".into(), problem: format!("this step runs on the {want} side") }
}
