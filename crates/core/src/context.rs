//! What a step runs with: AWS clients and the settings of its side.
//!
//! Lambdas build one [`StepContext`] at start-up from the environment; the
//! CLI builds one per side from its TOML file and an emulator endpoint. The
//! steps cannot tell the difference.

use crate::clients::AwsContext;
use crate::error::{DrError, DrResult};
use crate::settings::{Origin, Reader, SettingsError, SourceSettings, TargetSettings};

/// Which side a deployment is: chosen by the `SIDE` variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SideSettings {
    Source(SourceSettings),
    Target(TargetSettings),
}

impl SideSettings {
    /// Reads `SIDE` (`source` | `target`) and that side's settings.
    pub fn from_origin(origin: &Origin) -> Result<Self, SettingsError> {
        let side = match origin {
            Origin::Env(m) | Origin::Toml(m) => m.get("SIDE").cloned().unwrap_or_default(),
        };
        let mut r = Reader::new(origin);
        let settings = match side.as_str() {
            "source" => SourceSettings::read(&mut r, false).map(Self::Source),
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

/// Clients and settings for one side.
#[derive(Debug, Clone)]
pub struct StepContext {
    pub aws: AwsContext,
    pub settings: SideSettings,
}

impl StepContext {
    /// Lambda start-up: settings and clients from the environment (see
    /// [`AwsContext::from_lambda_environment`]).
    pub fn from_env() -> Result<Self, SettingsError> {
        let settings = SideSettings::from_origin(&Origin::process_env())?;
        Ok(Self { aws: AwsContext::from_lambda_environment(), settings })
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
