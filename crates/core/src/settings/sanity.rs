//! The SanityCheck step's settings (target side).

use super::{Reader, keys};
use crate::ids::{AccountId, Arn, Region};

/// The SanityCheck step's settings (target side). Without a secret the step
/// is a logged no-op that reports `skipped`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SanitySettings {
    /// `SANITY_SECRET_ARN`: Secrets Manager secret (target account and region)
    /// with `username` and `password` (the RDS secret shape; `dbname` is used
    /// when `SANITY_DATABASE` is unset).
    pub secret_arn: Option<Arn>,
    /// `SANITY_DATABASE`: the database to connect to.
    pub database: Option<String>,
    /// `SANITY_QUERY`: SQL that must return at least one row.
    pub query: Option<String>,
    /// `SANITY_MIN_ROWS`: `table=count` items, comma-separated.
    pub min_rows: Vec<crate::probe::MinRows>,
    /// `SANITY_FRESHNESS`: `[schema.]table.column` of a timestamp column.
    pub freshness: Option<crate::probe::FreshnessColumn>,
    /// `SANITY_RPO_SECONDS`: required with `SANITY_FRESHNESS`.
    pub rpo_seconds: Option<u32>,
    /// `SANITY_TLS` (`require` by default) and `SANITY_TLS_CA_FILE`.
    pub tls: crate::probe::TlsMode,
    /// `SANITY_TIMEOUT_SECONDS`: bound of the connection and of each probe (default 10).
    pub timeout_seconds: u32,
}

impl SanitySettings {
    /// Whether the step probes at all (a secret is configured).
    pub fn enabled(&self) -> bool {
        self.secret_arn.is_some()
    }

    pub(crate) fn read(r: &mut Reader<'_>, region: Option<&Region>, account: Option<&AccountId>) -> Self {
        use crate::probe::{FreshnessColumn, MinRows, TlsMode};
        use keys::*;
        let secret_arn = r.optional::<Arn>(SANITY_SECRET_ARN);
        if let Some(arn) = &secret_arn {
            if let Err(e) = arn.expect_kind("secretsmanager", "secret:") {
                r.problem(SANITY_SECRET_ARN, e.to_string());
            } else if region.is_some() && arn.region().as_ref() != region {
                r.problem(SANITY_SECRET_ARN, "the secret must be in the target region");
            } else if account.is_some() && arn.account().as_ref() != account {
                r.problem(SANITY_SECRET_ARN, "the secret must belong to the target account");
            }
        }
        let database = r.optional_text(SANITY_DATABASE).map(|d| d.trim().to_owned());
        let query = r.optional_text(SANITY_QUERY).map(|q| q.trim().to_owned());
        let mut min_rows = Vec::new();
        for item in r.list(SANITY_MIN_ROWS) {
            match item.parse::<MinRows>() {
                Ok(m) => min_rows.push(m),
                Err(e) => r.problem(SANITY_MIN_ROWS, e.to_string()),
            }
        }
        let freshness = r.optional::<FreshnessColumn>(SANITY_FRESHNESS);
        let rpo_seconds = r.optional_number(SANITY_RPO_SECONDS, 1..=31_536_000);
        match (&freshness, rpo_seconds) {
            (Some(_), None) if r.origin.raw(SANITY_RPO_SECONDS).is_none() => {
                r.problem(SANITY_RPO_SECONDS, "is required when SANITY_FRESHNESS is set")
            }
            (None, Some(_)) => {
                r.problem(SANITY_RPO_SECONDS, "is only used with SANITY_FRESHNESS, which is not set")
            }
            _ => {}
        }
        let ca_file = r.optional_text(SANITY_TLS_CA_FILE).map(std::path::PathBuf::from);
        let tls = match r.optional_text(SANITY_TLS).as_deref().map(str::trim) {
            None | Some("require") => TlsMode::Require,
            Some("disable") => TlsMode::Disable,
            Some("verify-full") => match &ca_file {
                Some(path) => TlsMode::VerifyFull { ca_file: path.clone() },
                None => {
                    r.problem(SANITY_TLS_CA_FILE, "is required when SANITY_TLS is verify-full");
                    TlsMode::Require
                }
            },
            Some(other) => {
                r.problem(SANITY_TLS, format!("must be disable, require or verify-full (got {other:?})"));
                TlsMode::Require
            }
        };
        if ca_file.is_some() && !matches!(tls, TlsMode::VerifyFull { .. }) {
            r.problem(SANITY_TLS_CA_FILE, "is only used when SANITY_TLS is verify-full");
        }
        let timeout_seconds = r.number(SANITY_TIMEOUT_SECONDS, 10, 1..=60);
        Self { secret_arn, database, query, min_rows, freshness, rpo_seconds, tls, timeout_seconds }
    }
}

#[cfg(test)]
mod tests {
    use crate::settings::tests::{TARGET_ENV, env, target_settings};
    use crate::settings::{Origin, Reader, SettingError, TargetSettings};

    const SECRET: &str = "arn:aws:secretsmanager:us-west-1:222222222222:secret:aurora-dr-sanity-AbCdEf";

    fn read(extra: &[(&str, &str)]) -> (Option<TargetSettings>, Vec<SettingError>) {
        let mut pairs: Vec<(&str, &str)> = TARGET_ENV.to_vec();
        pairs.extend_from_slice(extra);
        let origin = env(&pairs);
        let mut r = Reader::new(&origin);
        let s = TargetSettings::read(&mut r);
        (s, r.into_errors())
    }

    fn with_sanity(extra: &[(&str, &str)]) -> TargetSettings {
        let (s, errors) = read(extra);
        assert!(errors.is_empty(), "{errors:?}");
        s.expect("settings")
    }

    #[test]
    fn settings_parse_from_env_and_toml() {
        let t = with_sanity(&[
            ("SANITY_SECRET_ARN", SECRET),
            ("SANITY_DATABASE", "orders"),
            ("SANITY_QUERY", "SELECT 1 FROM orders LIMIT 1"),
            ("SANITY_MIN_ROWS", "orders=10, sales.items=1"),
            ("SANITY_FRESHNESS", "orders.updated_at"),
            ("SANITY_RPO_SECONDS", "3600"),
            ("SANITY_TLS", "disable"),
            ("SANITY_TIMEOUT_SECONDS", "5"),
        ]);
        let s = &t.sanity;
        assert!(s.enabled());
        assert_eq!(s.database.as_deref(), Some("orders"));
        assert_eq!(
            s.min_rows.iter().map(|m| (m.table.to_string(), m.min)).collect::<Vec<_>>(),
            [("orders".to_owned(), 10), ("sales.items".to_owned(), 1)]
        );
        assert_eq!(s.freshness.as_ref().map(ToString::to_string).as_deref(), Some("orders.updated_at"));
        assert_eq!((s.rpo_seconds, s.timeout_seconds), (Some(3600), 5));
        assert_eq!(s.tls, crate::probe::TlsMode::Disable);

        // Off by default; TLS required by default.
        let off = target_settings();
        assert!(!off.sanity.enabled());
        assert_eq!(off.sanity.tls, crate::probe::TlsMode::Require);
        assert_eq!(off.sanity.timeout_seconds, 10);

        // TOML names the same settings target.sanity_*.
        let origin = Origin::Toml(
            [("target.sanity_min_rows", "orders=x"), ("target.sanity_tls", "maybe")]
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        let mut r = Reader::new(&origin);
        let _ = TargetSettings::read(&mut r);
        let names: Vec<String> = r.into_errors().into_iter().map(|e| e.name).collect();
        assert!(names.contains(&"target.sanity_min_rows".to_owned()), "{names:?}");
        assert!(names.contains(&"target.sanity_tls".to_owned()), "{names:?}");
    }

    #[test]
    fn each_bad_sanity_setting_is_named_with_its_rule() {
        // (extra settings, the setting named, a word of its rule)
        type Case = (&'static [(&'static str, &'static str)], &'static str, &'static str);
        let cases: &[Case] = &[
            (&[("SANITY_SECRET_ARN", "not-an-arn")], "SANITY_SECRET_ARN", "ARN"),
            (
                &[("SANITY_SECRET_ARN", "arn:aws:sns:us-west-1:222222222222:topic")],
                "SANITY_SECRET_ARN",
                "secretsmanager",
            ),
            (
                &[("SANITY_SECRET_ARN", "arn:aws:secretsmanager:us-west-2:222222222222:secret:x")],
                "SANITY_SECRET_ARN",
                "target region",
            ),
            (
                &[("SANITY_SECRET_ARN", "arn:aws:secretsmanager:us-west-1:111111111111:secret:x")],
                "SANITY_SECRET_ARN",
                "target account",
            ),
            (&[("SANITY_MIN_ROWS", "orders")], "SANITY_MIN_ROWS", "table=count"),
            (&[("SANITY_MIN_ROWS", "orders;drop=1")], "SANITY_MIN_ROWS", "ASCII letters"),
            (&[("SANITY_FRESHNESS", "updated_at")], "SANITY_FRESHNESS", "table.column"),
            (&[("SANITY_FRESHNESS", "orders.updated_at")], "SANITY_RPO_SECONDS", "required"),
            (&[("SANITY_RPO_SECONDS", "60")], "SANITY_RPO_SECONDS", "only used with SANITY_FRESHNESS"),
            (
                &[("SANITY_FRESHNESS", "orders.updated_at"), ("SANITY_RPO_SECONDS", "0")],
                "SANITY_RPO_SECONDS",
                "whole number",
            ),
            (&[("SANITY_TLS", "prefer")], "SANITY_TLS", "disable, require or verify-full"),
            (&[("SANITY_TLS", "verify-full")], "SANITY_TLS_CA_FILE", "required"),
            (&[("SANITY_TLS_CA_FILE", "/ca.pem")], "SANITY_TLS_CA_FILE", "only used"),
            (&[("SANITY_TIMEOUT_SECONDS", "0")], "SANITY_TIMEOUT_SECONDS", "from 1 to 60"),
        ];
        for (extra, key, rule) in cases {
            let (_, errors) = read(extra);
            assert!(
                errors.iter().any(|e| e.name == *key && e.problem.contains(rule)),
                "{extra:?}: want {key} {rule:?} in {errors:?}"
            );
        }
    }
}
