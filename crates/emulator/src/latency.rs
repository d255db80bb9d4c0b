//! How long the emulator keeps resources in progress (`creating`, `copying`,
//! `renaming`, `deleting`, ...) and how long a renamed endpoint takes to
//! resolve: per kind of work, in describe calls or seconds, optionally
//! growing with the allocated storage of the data involved.
//!
//! [`Latency::for_tests`] and [`Latency::uniform`] keep every kind short;
//! [`Latency::realistic`] holds real-world figures (with their sources below)
//! to be [`scaled`](Latency::scaled) by a time-scale factor;
//! [`Latency::from_toml_file`] reads custom figures.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::EmulatorError;

/// How long one kind of work stays in progress: for `polls` describe calls
/// of that resource, or `seconds` plus `per_gib` seconds per GiB of the
/// allocated storage involved (both may be set; the longer wins).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delay {
    #[serde(default)]
    pub polls: u32,
    #[serde(default)]
    pub seconds: f64,
    /// Seconds added per GiB of allocated storage (snapshots, copies, restores).
    #[serde(default)]
    pub per_gib: f64,
}

impl Delay {
    /// In progress on the response that started the work and the next `n` describe calls.
    pub fn polls(n: u32) -> Self {
        Self { polls: n, ..Self::default() }
    }

    /// In progress for `s` seconds.
    pub fn seconds(s: f64) -> Self {
        Self { seconds: s, ..Self::default() }
    }

    /// In progress for `seconds` plus `per_gib` seconds per GiB of storage.
    pub fn sized(seconds: f64, per_gib: f64) -> Self {
        Self { seconds, per_gib, polls: 0 }
    }

    /// The same delay with its times multiplied by `factor` (polls unchanged).
    pub fn scaled(self, factor: f64) -> Self {
        Self { polls: self.polls, seconds: self.seconds * factor, per_gib: self.per_gib * factor }
    }

    /// Seconds this delay lasts for `gib` GiB of storage (polls not counted).
    pub fn seconds_for(&self, gib: f64) -> f64 {
        self.seconds + self.per_gib * gib
    }
}

/// Delay per kind of work. Kinds missing from a JSON or TOML document are
/// zero (JSON) or taken from the base profile (TOML).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Latency {
    /// A cluster snapshot being created (`creating`).
    pub snapshot: Delay,
    /// A cluster snapshot being copied (`copying`), in or across Regions.
    pub copy: Delay,
    /// CreateDBCluster (`creating`).
    pub cluster: Delay,
    /// CreateDBInstance (`creating`).
    pub instance: Delay,
    /// RestoreDBClusterFromSnapshot (`creating`).
    #[serde(default)]
    pub restore: Delay,
    /// A renamed cluster or instance (`renaming`).
    #[serde(default)]
    pub rename: Delay,
    /// Any other ModifyDBCluster (`modifying`).
    #[serde(default)]
    pub modify: Delay,
    /// A deleted cluster or instance (`deleting`, then gone).
    #[serde(default)]
    pub delete: Delay,
    /// Until a renamed resource's new endpoint name reaches it.
    #[serde(default)]
    pub dns: Delay,
    /// How long an old endpoint name keeps reaching the renamed resource.
    #[serde(default)]
    pub dns_cache: Delay,
}

impl Latency {
    /// The same delay for every kind of work, DNS included.
    pub fn uniform(delay: Delay) -> Self {
        Self {
            snapshot: delay,
            copy: delay,
            cluster: delay,
            instance: delay,
            restore: delay,
            rename: delay,
            modify: delay,
            delete: delay,
            dns: delay,
            dns_cache: delay,
        }
    }

    /// Tests: every resource is in progress for two describe calls, and a
    /// renamed endpoint resolves anew after two resolutions.
    pub fn for_tests() -> Self {
        Self::uniform(Delay::polls(2))
    }

    /// Demos: short but visible, three seconds.
    pub fn for_demo() -> Self {
        Self::uniform(Delay::seconds(3.0))
    }

    /// Real-world durations, in seconds of real time (scale them with
    /// [`Latency::scaled`]). Where AWS publishes a figure it is used; the
    /// others are estimates, marked so. Sources:
    ///
    /// - `rename` and `dns`: 600 s. RDS User Guide, "Renaming a DB instance":
    ///   the new DNS name becomes effective in about 10 minutes and the
    ///   renamed instance is not available until then
    ///   (<https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html>).
    ///   The Aurora user guide gives no figure for clusters; the instance
    ///   figure is used.
    /// - `dns_cache`: 180 s, estimate of the same page's "could remain
    ///   cached for a few minutes".
    /// - `copy`: 300 s + 12 s/GiB (about 85 MiB/s; 500 GiB: about 1 h 45 min).
    ///   Estimate; the Aurora user guide, "Copying a DB cluster snapshot",
    ///   says only that a cross-Region copy "can take hours"
    ///   (<https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-copy-snapshot.html>).
    /// - `restore`: 600 s + 1 s/GiB. Estimate; AWS re:Post, "Why is my Aurora
    ///   DB cluster clone, snapshot restore, or point in time restore taking
    ///   so long?" says a restore "can take up to a few hours", and "Why is my
    ///   Aurora MySQL-Compatible DB cluster snapshot taking so long to
    ///   restore?" that restore time grows far less than linearly with size
    ///   (<https://repost.aws/knowledge-center/aurora-mysql-slow-snapshot-restore>,
    ///   <https://repost.aws/knowledge-center/aurora-mysql-snapshot-restore-options>).
    /// - `instance`: 600 s and `cluster`: 300 s. Estimates at the low end of
    ///   "Aurora cluster and instance creation can take 10-20 minutes"
    ///   (AWS's agent toolkit, skill "creating-amazon-aurora-db-cluster-with-instances",
    ///   <https://github.com/aws/agent-toolkit-for-aws>).
    /// - `snapshot`: 120 s + 0.2 s/GiB. Estimate; AWS publishes no figure for
    ///   a manual Aurora cluster snapshot (they are taken from the storage
    ///   layer, so size matters little).
    /// - `modify`: 60 s and `delete`: 300 s. Estimates; AWS publishes none.
    pub fn realistic() -> Self {
        Self {
            snapshot: Delay::sized(120.0, 0.2),
            copy: Delay::sized(300.0, 12.0),
            cluster: Delay::seconds(300.0),
            instance: Delay::seconds(600.0),
            restore: Delay::sized(600.0, 1.0),
            rename: Delay::seconds(600.0),
            modify: Delay::seconds(60.0),
            delete: Delay::seconds(300.0),
            dns: Delay::seconds(600.0),
            dns_cache: Delay::seconds(180.0),
        }
    }

    /// Every time multiplied by `factor` (e.g. the drill's time scale 0.001
    /// turns a 600 s rename into 0.6 s); polls unchanged.
    pub fn scaled(self, factor: f64) -> Self {
        let f = factor.max(0.0);
        Self {
            snapshot: self.snapshot.scaled(f),
            copy: self.copy.scaled(f),
            cluster: self.cluster.scaled(f),
            instance: self.instance.scaled(f),
            restore: self.restore.scaled(f),
            rename: self.rename.scaled(f),
            modify: self.modify.scaled(f),
            delete: self.delete.scaled(f),
            dns: self.dns.scaled(f),
            dns_cache: self.dns_cache.scaled(f),
        }
    }

    /// Reads a duration profile from TOML text:
    ///
    /// ```toml
    /// base = "realistic"        # or "zero": where kinds left out come from
    /// [copy]                    # any kind: snapshot, copy, cluster, instance,
    /// seconds = 600             # restore, rename, modify, delete, dns, dns_cache
    /// per_gib = 20
    /// ```
    pub fn from_toml_str(text: &str) -> Result<Self, String> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Profile {
            base: Option<String>,
            snapshot: Option<Delay>,
            copy: Option<Delay>,
            cluster: Option<Delay>,
            instance: Option<Delay>,
            restore: Option<Delay>,
            rename: Option<Delay>,
            modify: Option<Delay>,
            delete: Option<Delay>,
            dns: Option<Delay>,
            dns_cache: Option<Delay>,
        }
        let p: Profile = toml::from_str(text).map_err(|e| e.to_string())?;
        let base = match p.base.as_deref() {
            None | Some("realistic") => Self::realistic(),
            Some("zero") => Self::default(),
            Some(other) => return Err(format!("base = {other:?}: expected \"realistic\" or \"zero\"")),
        };
        let latency = Self {
            snapshot: p.snapshot.unwrap_or(base.snapshot),
            copy: p.copy.unwrap_or(base.copy),
            cluster: p.cluster.unwrap_or(base.cluster),
            instance: p.instance.unwrap_or(base.instance),
            restore: p.restore.unwrap_or(base.restore),
            rename: p.rename.unwrap_or(base.rename),
            modify: p.modify.unwrap_or(base.modify),
            delete: p.delete.unwrap_or(base.delete),
            dns: p.dns.unwrap_or(base.dns),
            dns_cache: p.dns_cache.unwrap_or(base.dns_cache),
        };
        let negative = [
            latency.snapshot,
            latency.copy,
            latency.cluster,
            latency.instance,
            latency.restore,
            latency.rename,
            latency.modify,
            latency.delete,
            latency.dns,
            latency.dns_cache,
        ]
        .iter()
        .any(|d| d.seconds < 0.0 || d.per_gib < 0.0 || !d.seconds.is_finite() || !d.per_gib.is_finite());
        if negative {
            return Err("seconds and per_gib must be finite and not negative".to_owned());
        }
        Ok(latency)
    }

    /// [`Latency::from_toml_str`] for a file.
    pub fn from_toml_file(path: &Path) -> Result<Self, EmulatorError> {
        let text = std::fs::read_to_string(path).map_err(|e| EmulatorError::io(path, e))?;
        Self::from_toml_str(&text)
            .map_err(|message| EmulatorError::Durations { path: path.to_path_buf(), message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_round_trips_through_json() {
        let latency = Latency {
            copy: Delay::sized(2.0, 0.5),
            cluster: Delay::seconds(0.5),
            ..Latency::uniform(Delay::polls(3))
        };
        let text = serde_json::to_string(&latency).unwrap();
        assert_eq!(serde_json::from_str::<Latency>(&text).unwrap(), latency);
    }

    #[test]
    fn older_json_without_the_new_kinds_still_parses() {
        let text = r#"{"snapshot": {"polls": 1}, "copy": {"seconds": 2.0}, "cluster": {}, "instance": {}}"#;
        let latency: Latency = serde_json::from_str(text).unwrap();
        assert_eq!(latency.copy, Delay::seconds(2.0));
        assert_eq!(latency.dns, Delay::default());
    }

    #[test]
    fn uniform_latency_covers_transitions_and_dns() {
        let latency = Latency::for_tests();
        assert_eq!(latency.rename, Delay::polls(2));
        assert_eq!(latency.delete, Delay::polls(2));
        assert_eq!(latency.dns, Delay::polls(2));
        assert_eq!(latency.dns_cache, Delay::polls(2));
    }

    #[test]
    fn realistic_profile_scales_and_grows_with_size() {
        let real = Latency::realistic();
        // The documented ten minutes for a new DNS name.
        assert_eq!(real.dns.seconds_for(0.0), 600.0);
        let gib500 = real.copy.seconds_for(500.0);
        let gib5 = real.copy.seconds_for(5.0);
        assert!(gib500 > 10.0 * gib5, "copy time grows with size: {gib5} vs {gib500}");
        let scaled = real.scaled(0.001);
        assert!((scaled.copy.seconds_for(500.0) - gib500 * 0.001).abs() < 1e-9);
        assert_eq!(scaled.dns.polls, 0);
    }

    #[test]
    fn toml_profile_overrides_the_realistic_base() {
        let latency =
            Latency::from_toml_str("[copy]\nseconds = 10\nper_gib = 1.5\n\n[dns]\npolls = 4\n").unwrap();
        assert_eq!(latency.copy, Delay::sized(10.0, 1.5));
        assert_eq!(latency.dns, Delay::polls(4));
        assert_eq!(latency.restore, Latency::realistic().restore);
        let zero = Latency::from_toml_str("base = \"zero\"\n[rename]\nseconds = 2\n").unwrap();
        assert_eq!(zero.rename, Delay::seconds(2.0));
        assert_eq!(zero.copy, Delay::default());
    }

    #[test]
    fn toml_profile_errors_name_the_problem() {
        let typo = Latency::from_toml_str("[copy]\nsecond = 10\n").unwrap_err();
        assert!(typo.contains("second"), "{typo}");
        let kind = Latency::from_toml_str("[copies]\nseconds = 1\n").unwrap_err();
        assert!(kind.contains("copies"), "{kind}");
        let negative = Latency::from_toml_str("[copy]\nseconds = -1\n").unwrap_err();
        assert!(negative.contains("negative"), "{negative}");
        let base = Latency::from_toml_str("base = \"fast\"\n").unwrap_err();
        assert!(base.contains("fast"), "{base}");
    }

    #[test]
    fn a_missing_profile_file_is_an_io_error() {
        let missing = Path::new("/nonexistent/durations.toml");
        assert!(matches!(Latency::from_toml_file(missing), Err(EmulatorError::Io { .. })));
    }
}
