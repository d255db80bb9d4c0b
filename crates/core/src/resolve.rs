//! What a cluster endpoint's hostname reaches now: the seam the
//! WaitForNewEndpoint state polls through after Swap.
//!
//! A rename changes which cluster a name reaches only through DNS, and not
//! at once: RDS needs minutes before the new name resolves and clients may
//! keep reaching the old resource through a cached answer (RDS user guide,
//! "Renaming a DB instance",
//! <https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html>;
//! the page documents about ten minutes for instances and says nothing of
//! Aurora cluster endpoints, which a rename changes the same way). Until the
//! existing name reaches the restored cluster, deleting the previous one
//! would leave clients of the existing name on a cluster being deleted.
//!
//! Deployed, [`SystemDns`] resolves the hostname to its addresses; a local
//! drill or test injects a resolver that answers with the resource the
//! emulator routes the name to ([`Reach::Resource`]). [`moved`] decides from
//! either answer.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use futures::future::BoxFuture;

/// What a hostname reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// The name does not resolve (yet).
    Nothing,
    /// A cluster, by its `DbClusterResourceId` (stable across renames).
    Resource(String),
    /// Addresses only (real DNS): which cluster they belong to is told by
    /// comparing with another name's addresses.
    Addresses(BTreeSet<IpAddr>),
}

impl fmt::Display for Reach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Nothing => f.write_str("nothing"),
            Self::Resource(id) => write!(f, "cluster resource {id}"),
            Self::Addresses(a) => {
                let list: Vec<String> = a.iter().map(ToString::to_string).collect();
                write!(f, "{}", list.join(","))
            }
        }
    }
}

/// Resolves endpoint hostnames. Errors other than "does not resolve" are
/// the resolver's to report as [`Reach::Nothing`] with a log line: a wait
/// polls again either way.
pub trait EndpointResolver: Send + Sync + fmt::Debug {
    fn reach<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Reach>;
}

/// The system resolver (in Lambda: the Region's DNS).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemDns;

impl EndpointResolver for SystemDns {
    fn reach<'a>(&'a self, host: &'a str) -> BoxFuture<'a, Reach> {
        Box::pin(async move {
            match tokio::net::lookup_host((host, 0)).await {
                Ok(addrs) => {
                    let set: BTreeSet<IpAddr> = addrs.map(|a| a.ip()).collect();
                    if set.is_empty() { Reach::Nothing } else { Reach::Addresses(set) }
                }
                Err(e) => {
                    tracing::info!(host, error = %e, "endpoint does not resolve");
                    Reach::Nothing
                }
            }
        })
    }
}

/// Whether the existing name reaches the restored cluster (`new_resource_id`)
/// and no longer the previous one. `existing` is what the existing name's
/// endpoint reaches; `previous` what the previous cluster's endpoint (under
/// its new `-old-` name, which no cache can hold) reaches, `None` when there
/// is no previous cluster. `Err` says why not yet, as a state
/// ("still reaching ...").
pub fn moved(existing: &Reach, new_resource_id: &str, previous: Option<&Reach>) -> Result<(), String> {
    match (existing, previous) {
        (Reach::Nothing, _) => Err("not resolving yet".into()),
        (Reach::Resource(id), _) if id == new_resource_id => Ok(()),
        (Reach::Resource(id), _) => {
            Err(format!("still reaching cluster resource {id} (the restored one is {new_resource_id})"))
        }
        (Reach::Addresses(_), None) => Ok(()),
        (Reach::Addresses(_), Some(Reach::Nothing)) => {
            Err("resolving, but the previous cluster's renamed endpoint is not yet (the two cannot be told apart)".into())
        }
        (Reach::Addresses(now), Some(Reach::Addresses(old))) => match now.intersection(old).next() {
            Some(ip) => Err(format!("still reaching {ip}, an address of the previous cluster")),
            None => Ok(()),
        },
        (Reach::Addresses(_), Some(Reach::Resource(_))) => {
            Err("answered in two kinds (addresses and a resource), which cannot be compared".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Reach {
        Reach::Addresses(list.iter().map(|a| a.parse().expect("ip")).collect())
    }

    #[test]
    fn a_resource_answer_must_be_the_restored_cluster() {
        let new = "cluster-NEW";
        assert_eq!(moved(&Reach::Resource(new.into()), new, None), Ok(()));
        let old = moved(&Reach::Resource("cluster-OLD".into()), new, Some(&Reach::Nothing));
        assert!(old.as_ref().is_err_and(|e| e.contains("cluster-OLD")), "{old:?}");
        assert!(moved(&Reach::Nothing, new, None).is_err());
    }

    #[test]
    fn addresses_must_be_apart_from_the_previous_clusters() {
        let new = "cluster-NEW";
        let now = addrs(&["10.0.1.5"]);
        assert_eq!(moved(&now, new, Some(&addrs(&["10.0.2.9"]))), Ok(()));
        let cached = moved(&now, new, Some(&addrs(&["10.0.1.5", "10.0.2.9"])));
        assert!(cached.as_ref().is_err_and(|e| e.contains("10.0.1.5")), "{cached:?}");
        assert!(moved(&now, new, Some(&Reach::Nothing)).is_err(), "no way to tell yet");
        assert_eq!(moved(&now, new, None), Ok(()), "first run: nothing else to reach");
    }

    #[tokio::test]
    async fn the_system_resolver_resolves_loopback_and_not_an_invalid_name() {
        assert!(matches!(SystemDns.reach("localhost").await, Reach::Addresses(_)));
        // RFC 6761: `.invalid` names never resolve.
        assert_eq!(SystemDns.reach("orders-dr.cluster-x.invalid").await, Reach::Nothing);
    }
}
