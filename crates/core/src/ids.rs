//! Validated identifiers: parse once at the edge, then carry meaning in types.
//!
//! Every type here implements `FromStr`, `Display`, `AsRef<str>` and serde
//! (as a plain string, validated on deserialisation). A rejected value yields
//! [`InvalidValue`], which names the rule that was broken; callers add the
//! name of the field or variable it came from.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value that broke a rule. `rule` is a sentence a person understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{rule} (got {value:?})")]
pub struct InvalidValue {
    pub rule: String,
    pub value: String,
}

impl InvalidValue {
    fn new(rule: impl Into<String>, value: &str) -> Self {
        // Long values are cut so an error message never carries a payload.
        let value: String = value.chars().take(80).collect();
        Self { rule: rule.into(), value }
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $check(s).map(|()| Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidValue;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                $check(&s).map(|()| Self(s))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::try_from(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// An RDS DB cluster identifier: 1–63 lowercase letters, digits or
    /// hyphens, first a letter, no trailing hyphen, no two consecutive
    /// hyphens. RDS accepts capitals but stores every identifier in lowercase
    /// (CreateDBCluster, `DBClusterIdentifier`: "This parameter is stored as a
    /// lowercase string", Amazon RDS API Reference,
    /// https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBCluster.html),
    /// while IAM matches the ARNs built from it case-sensitively: a capital
    /// would make the deployed policies miss the cluster, so it is refused.
    ClusterId,
    check_rds_identifier_63
);

string_id!(
    /// An RDS DB instance identifier (same rules as [`ClusterId`]).
    InstanceId,
    check_rds_identifier_63
);

string_id!(
    /// A DB cluster snapshot identifier: 1–255 lowercase letters, digits or
    /// hyphens, first a letter, no trailing hyphen, no two consecutive hyphens
    /// (stored lowercase by RDS, as [`ClusterId`]).
    SnapshotId,
    check_snapshot_identifier
);

string_id!(
    /// A 12-digit AWS account id.
    AccountId,
    check_account_id
);

string_id!(
    /// An AWS region name such as `us-west-2` or `us-gov-east-1`: one of
    /// [`REGIONS`] (a typo is answered with the nearest known name).
    Region,
    check_region
);

string_id!(
    /// An ARN: `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`.
    Arn,
    check_arn
);

string_id!(
    /// A Step Functions execution or run name: 1–80 of `A-Z a-z 0-9 - _`.
    RunId,
    check_run_id
);

/// Longest cluster or instance identifier RDS accepts.
pub const MAX_RDS_ID: usize = 63;

/// `{base}{suffix}` within [`MAX_RDS_ID`] characters: `base` is cut (and a
/// trailing hyphen dropped, so the result never holds `--` or ends badly)
/// to make room for `suffix`, which is kept whole. The one place generated
/// cluster and instance ids are fitted (`{existing}-old-{stamp}`,
/// `{instance}-{n}`).
pub fn fit_rds_id(base: &str, suffix: &str) -> String {
    let keep = MAX_RDS_ID.saturating_sub(suffix.chars().count());
    let stem: String = base.chars().take(keep).collect();
    format!("{}{suffix}", stem.trim_end_matches('-'))
}

fn check_rds_identifier_63(s: &str) -> Result<(), InvalidValue> {
    check_rds_identifier(s, 63)
}

fn check_snapshot_identifier(s: &str) -> Result<(), InvalidValue> {
    check_rds_identifier(s, 255)
}

/// The RDS identifier rules, with the first rule broken named.
pub fn check_rds_identifier(s: &str, max_len: usize) -> Result<(), InvalidValue> {
    check_rds_identifier_chars(s, max_len)?;
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(InvalidValue::new(
            format!(
                "must be lowercase: RDS stores identifiers in lowercase and IAM matches ARNs case-sensitively \
                 (did you mean {:?}?)",
                s.to_ascii_lowercase()
            ),
            s,
        ));
    }
    Ok(())
}

fn check_rds_identifier_chars(s: &str, max_len: usize) -> Result<(), InvalidValue> {
    let bad = |rule: String| Err(InvalidValue::new(rule, s));
    if s.is_empty() {
        return bad("must not be empty".into());
    }
    if s.chars().count() > max_len {
        return bad(format!("must be at most {max_len} characters"));
    }
    if let Some(c) = s.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-')) {
        return bad(format!("may contain only ASCII letters, digits and hyphens, not {c:?}"));
    }
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return bad("must start with a letter".into());
    }
    if s.ends_with('-') {
        return bad("must not end with a hyphen".into());
    }
    if s.contains("--") {
        return bad("must not contain two consecutive hyphens".into());
    }
    Ok(())
}

fn check_account_id(s: &str) -> Result<(), InvalidValue> {
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(InvalidValue::new("must be exactly 12 digits", s))
    }
}

/// Every region aurora-dr accepts: the commercial regions of the AWS General
/// Reference's table ("AWS service endpoints", Regional endpoints,
/// https://docs.aws.amazon.com/general/latest/gr/rande.html), AWS GovCloud
/// (US) and the China regions, with whether the region is opt-in. Opt-in
/// regions are those launched after 20 March 2019, disabled in an account
/// until enabled ("Enable or disable AWS Regions in your account", AWS
/// Account Management Reference Guide,
/// https://docs.aws.amazon.com/accounts/latest/reference/manage-acct-regions.html).
///
/// Kept current by a test (`regions_match_the_pinned_botocore`, crates/cli) that compares this
/// list with the `aws`, `aws-cn` and `aws-us-gov` partitions of the
/// endpoints data in the emulator's pinned botocore (`emulator/requirements.txt`),
/// so re-pinning the emulator to a botocore that knows a new region fails
/// until the region is added here.
pub const REGIONS: &[(&str, bool)] = &[
    ("af-south-1", true),
    ("ap-east-1", true),
    ("ap-east-2", true),
    ("ap-northeast-1", false),
    ("ap-northeast-2", false),
    ("ap-northeast-3", false),
    ("ap-south-1", false),
    ("ap-south-2", true),
    ("ap-southeast-1", false),
    ("ap-southeast-2", false),
    ("ap-southeast-3", true),
    ("ap-southeast-4", true),
    ("ap-southeast-5", true),
    ("ap-southeast-6", true),
    ("ap-southeast-7", true),
    ("ca-central-1", false),
    ("ca-west-1", true),
    ("cn-north-1", false),
    ("cn-northwest-1", false),
    ("eu-central-1", false),
    ("eu-central-2", true),
    ("eu-north-1", false),
    ("eu-south-1", true),
    ("eu-south-2", true),
    ("eu-west-1", false),
    ("eu-west-2", false),
    ("eu-west-3", false),
    ("il-central-1", true),
    ("me-central-1", true),
    ("me-south-1", true),
    ("mx-central-1", true),
    ("sa-east-1", false),
    ("us-east-1", false),
    ("us-east-2", false),
    ("us-gov-east-1", false),
    ("us-gov-west-1", false),
    ("us-west-1", false),
    ("us-west-2", false),
];

/// Whether `region` (one of [`REGIONS`]) must be enabled in an account first.
pub fn is_opt_in_region(region: &Region) -> bool {
    REGIONS.iter().any(|(r, opt_in)| *r == region.as_str() && *opt_in)
}

/// The known region nearest to `s` (at most two edits away), for a "did you
/// mean" on a typo such as `eu-centrel-1`.
pub fn nearest_region(s: &str) -> Option<&'static str> {
    let s = s.trim().to_ascii_lowercase();
    REGIONS
        .iter()
        .map(|(r, _)| (strsim::levenshtein(&s, r), *r))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, r)| r)
}

fn check_region(s: &str) -> Result<(), InvalidValue> {
    if REGIONS.iter().any(|(r, _)| *r == s) {
        return Ok(());
    }
    let rule = match nearest_region(s) {
        Some(near) => format!("is not an AWS region (did you mean {near}?)"),
        None => "must be an AWS region name such as us-west-2 (lowercase; see the region table of the AWS \
                 General Reference)"
            .to_owned(),
    };
    Err(InvalidValue::new(rule, s))
}

fn check_run_id(s: &str) -> Result<(), InvalidValue> {
    let ok = !s.is_empty()
        && s.len() <= 80
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(InvalidValue::new("must be 1-80 characters of letters, digits, '-' or '_'", s))
    }
}

fn check_arn(s: &str) -> Result<(), InvalidValue> {
    let bad = |rule: &str| Err(InvalidValue::new(rule, s));
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return bad("must be an ARN of the form arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE");
    }
    if !matches!(parts[1], "aws" | "aws-cn" | "aws-us-gov" | "aws-iso" | "aws-iso-b") {
        return bad("must name an AWS partition (aws, aws-cn, aws-us-gov, ...)");
    }
    if parts[2].is_empty() || !parts[2].bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
        return bad("must name a service in lowercase");
    }
    if !parts[3].is_empty() && check_region(parts[3]).is_err() {
        return bad("has a malformed region");
    }
    if !parts[4].is_empty() && check_account_id(parts[4]).is_err() {
        return bad("has a malformed account id (12 digits)");
    }
    if parts[5].is_empty() || parts[5].chars().any(char::is_whitespace) {
        return bad("must name a resource without whitespace");
    }
    Ok(())
}

impl Arn {
    fn part(&self, index: usize) -> &str {
        self.0.splitn(6, ':').nth(index).unwrap_or_default()
    }

    pub fn partition(&self) -> &str {
        self.part(1)
    }

    pub fn service(&self) -> &str {
        self.part(2)
    }

    /// The region, if the ARN has one (global resources have none).
    pub fn region(&self) -> Option<Region> {
        self.part(3).parse().ok()
    }

    /// The owning account, if the ARN has one.
    pub fn account(&self) -> Option<AccountId> {
        self.part(4).parse().ok()
    }

    /// Everything after the account: `cluster-snapshot:name`, `key/uuid`, `topic-name`.
    pub fn resource(&self) -> &str {
        self.part(5)
    }

    /// Checks the ARN's service (and optionally resource prefix), naming the expectation.
    pub fn expect_kind(&self, service: &str, resource_prefix: &str) -> Result<(), InvalidValue> {
        if self.service() == service && self.resource().starts_with(resource_prefix) {
            Ok(())
        } else {
            Err(InvalidValue::new(
                format!("must be an ARN of service {service:?} with resource {resource_prefix}..."),
                &self.0,
            ))
        }
    }

    /// The ARN of an RDS cluster snapshot.
    pub fn cluster_snapshot(region: &Region, account: &AccountId, id: &SnapshotId) -> Self {
        Self(format!("arn:{}:rds:{region}:{account}:cluster-snapshot:{id}", partition_of(region)))
    }
}

/// The partition a region belongs to.
pub fn partition_of(region: &Region) -> &'static str {
    let r = region.as_str();
    if r.starts_with("cn-") {
        "aws-cn"
    } else if r.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rds_identifiers_follow_every_rule() {
        let long63 = format!("a{}", "b".repeat(62));
        let long64 = format!("a{}", "b".repeat(63));
        let good = ["a", "orders", "orders-dr", "orders-dr-1", long63.as_str()];
        for s in good {
            assert!(s.parse::<ClusterId>().is_ok(), "{s} should be valid");
        }
        let bad: &[(&str, &str)] = &[
            ("", "empty"),
            (&long64, "at most 63"),
            ("1orders", "start with a letter"),
            ("-orders", "start with a letter"),
            ("orders-", "end with a hyphen"),
            ("orders--dr", "two consecutive"),
            ("orders_dr", "only ASCII"),
            ("orders.dr", "only ASCII"),
            ("orders dr", "only ASCII"),
            ("ördërs", "only ASCII"),
            ("orders/dr", "only ASCII"),
            ("orders:dr", "only ASCII"),
            ("🦀", "only ASCII"),
            ("Orders-DR-1", "must be lowercase"),
        ];
        for (s, rule) in bad {
            let err = s.parse::<ClusterId>().expect_err(s);
            assert!(err.rule.contains(rule), "{s:?}: {err}");
            let err = s.parse::<InstanceId>().expect_err(s);
            assert!(err.rule.contains(rule), "{s:?}: {err}");
        }
    }

    #[test]
    fn generated_ids_fit_in_63_characters() {
        assert_eq!(fit_rds_id("orders-dr", "-old-20261125160005"), "orders-dr-old-20261125160005");
        let long = format!("a{}", "b".repeat(62));
        let cut = fit_rds_id(&long, "-old-20261125160005");
        assert_eq!(cut.len(), 63);
        assert!(cut.ends_with("-old-20261125160005"));
        assert!(cut.parse::<ClusterId>().is_ok());
        // A cut ending in a hyphen must not produce `--`.
        let hyphen_at_cut = format!("{}-{}", "a".repeat(43), "b".repeat(10));
        let cut = fit_rds_id(&hyphen_at_cut, "-old-20261125160005");
        assert!(!cut.contains("--"), "{cut}");
        assert!(cut.parse::<InstanceId>().is_ok());
        assert_eq!(fit_rds_id(&long, "-2").len(), 63);
    }

    #[test]
    fn snapshot_ids_allow_255() {
        let ok = format!("a{}", "b".repeat(254));
        assert!(ok.parse::<SnapshotId>().is_ok());
        let too_long = format!("a{}", "b".repeat(255));
        assert!(too_long.parse::<SnapshotId>().is_err());
    }

    #[test]
    fn account_ids_are_twelve_digits() {
        assert!("111111111111".parse::<AccountId>().is_ok());
        for s in
            ["", "11111111111", "1111111111111", "11111111111a", " 111111111111", "１１１１１１１１１１１１"]
        {
            let err = s.parse::<AccountId>().expect_err(s);
            assert!(err.rule.contains("12 digits"), "{s:?}");
        }
    }

    #[test]
    fn regions_are_the_known_ones() {
        for s in
            ["us-west-2", "eu-central-1", "us-gov-east-1", "ap-southeast-4", "il-central-1", "cn-north-1"]
        {
            assert!(s.parse::<Region>().is_ok(), "{s}");
        }
        for s in [
            "",
            "us-west",
            "uswest2",
            "us_west_2",
            "us-west-2a",
            "u-west-2",
            "us--2",
            "us-west-123",
            "xx-north-9",
            "moon-base-1",
        ] {
            assert!(s.parse::<Region>().is_err(), "{s:?} should be rejected");
        }
    }

    #[test]
    fn a_region_typo_gets_the_nearest_known_name() {
        for (typo, want) in [
            ("eu-centrel-1", "eu-central-1"),
            ("US-WEST-2", "us-west-2"),
            ("us-west2", "us-west-2"),
            ("ap-southeast-22", "ap-southeast-2"),
        ] {
            let err = typo.parse::<Region>().expect_err(typo);
            assert!(err.rule.contains(&format!("did you mean {want}?")), "{typo}: {err}");
        }
        let err = "moon-base-1".parse::<Region>().expect_err("far from any");
        assert!(!err.rule.contains("did you mean"), "{err}");
        assert!(is_opt_in_region(&"eu-south-2".parse().expect("region")));
        assert!(!is_opt_in_region(&"us-east-1".parse().expect("region")));
    }

    #[test]
    fn arns_are_split_and_checked() {
        let arn: Arn =
            "arn:aws:rds:us-west-1:111111111111:cluster-snapshot:aurora-dr-orders-1".parse().expect("valid");
        assert_eq!(arn.service(), "rds");
        assert_eq!(arn.region().map(|r| r.to_string()).as_deref(), Some("us-west-1"));
        assert_eq!(arn.account().map(|a| a.to_string()).as_deref(), Some("111111111111"));
        assert_eq!(arn.resource(), "cluster-snapshot:aurora-dr-orders-1");
        assert!(arn.expect_kind("rds", "cluster-snapshot:").is_ok());
        assert!(arn.expect_kind("kms", "key/").is_err());

        for s in [
            "",
            "arn",
            "arn:aws:rds",
            "arn:aws:rds:us-west-1:111111111111",
            "arn:aws:rds:us-west-1:111111111111:",
            "arx:aws:rds:us-west-1:111111111111:cluster:x",
            "arn:amazon:rds:us-west-1:111111111111:cluster:x",
            "arn:aws:RDS:us-west-1:111111111111:cluster:x",
            "arn:aws:rds:uswest1:111111111111:cluster:x",
            "arn:aws:rds:us-west-1:1111:cluster:x",
            "arn:aws:rds:us-west-1:111111111111:cluster x",
        ] {
            assert!(s.parse::<Arn>().is_err(), "{s:?} should be rejected");
        }
    }

    #[test]
    fn run_ids_match_execution_names() {
        assert!("2026-11-25T16-00-00Z_abc".parse::<RunId>().is_ok());
        for s in ["", "a b", "a:b", &"x".repeat(81)] {
            assert!(s.parse::<RunId>().is_err(), "{s:?}");
        }
    }

    #[test]
    fn serde_validates() {
        let ok: Result<ClusterId, _> = serde_json::from_str("\"orders\"");
        assert!(ok.is_ok());
        let bad: Result<ClusterId, _> = serde_json::from_str("\"orders--x\"");
        let msg = bad.expect_err("invalid").to_string();
        assert!(msg.contains("consecutive"), "{msg}");
        assert_eq!(serde_json::to_string(&ok.expect("ok")).expect("ser"), "\"orders\"");
    }
}
