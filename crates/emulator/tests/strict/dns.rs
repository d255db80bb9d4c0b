//! compat/dns.py: endpoint names after a rename (RDS User Guide, "Renaming a
//! DB instance").

use aurora_dr_emulator::{Emulator, Resolved};

use crate::*;

async fn resolve(emulator: &Emulator, host: &str) -> Result<Option<Resolved>, String> {
    emulator.control().resolve(host).await.map_err(|e| format!("resolve {host}: {e}"))
}

/// The swap: `existing` renamed away, `temp` renamed to `existing`.
async fn swap(
    rds: &aws_sdk_rds::Client,
) -> Result<(aws_sdk_rds::types::DbCluster, aws_sdk_rds::types::DbCluster), String> {
    let old = new_cluster(rds, "existing", false).await?;
    let new = new_cluster(rds, "temp", false).await?;
    ok(
        "rename existing away",
        rds.modify_db_cluster()
            .db_cluster_identifier("existing")
            .new_db_cluster_identifier("existing-old")
            .apply_immediately(true)
            .send()
            .await,
    )?;
    cluster_in(rds, "existing-old", "available").await?;
    ok(
        "rename temp to existing",
        rds.modify_db_cluster()
            .db_cluster_identifier("temp")
            .new_db_cluster_identifier("existing")
            .apply_immediately(true)
            .send()
            .await,
    )?;
    cluster_in(rds, "existing", "available").await?;
    Ok((old, new))
}

rds_behaviour!(
    /// A cluster renamed to another's old name gets that name's endpoint:
    /// the endpoint is the name plus a part fixed per account and Region.
    a_cluster_renamed_to_an_old_name_gets_its_endpoint => same_endpoint_check
);

async fn same_endpoint_check(emulator: &Emulator) -> Check {
    let rds = rds(emulator, TARGET, TARGET_REGION).await;
    let (old, _) = swap(&rds).await?;
    let now = cluster_in(&rds, "existing", "available").await?;
    ensure!(
        now.endpoint() == old.endpoint(),
        "endpoint {:?} after the swap, {:?} before",
        now.endpoint(),
        old.endpoint()
    );
    ensure!(now.reader_endpoint() == old.reader_endpoint(), "reader endpoint changed with the swap");
    Ok(())
}

rds_behaviour!(
    /// After the swap, the existing name first still reaches the old cluster
    /// (cached), then the new one once the DNS delay is over; the temporary
    /// name keeps reaching the new cluster for a while, then nothing
    /// (`GET /_aurora_dr/resolve`, Control::resolve).
    renamed_endpoints_resolve_after_the_dns_delay => dns_delay_check
);

async fn dns_delay_check(emulator: &Emulator) -> Check {
    let rds = rds(emulator, TARGET, TARGET_REGION).await;
    let existing_host = {
        let before = new_cluster(&rds, "probe", false).await?;
        let host = resolve(emulator, before.endpoint().ok_or("no endpoint")?).await?;
        ensure!(host.is_some_and(|r| r.identifier == "probe"), "a new cluster's endpoint does not reach it");
        before.endpoint().unwrap_or_default().replace("probe.", "existing.")
    };
    let (old, new) = swap(&rds).await?;
    let temp_host = new.endpoint().ok_or("no endpoint")?.to_owned();
    let old_id = old.db_cluster_resource_id().ok_or("no resource id")?;
    let new_id = new.db_cluster_resource_id().ok_or("no resource id")?;
    let mut seen = Vec::new();
    for _ in 0..MAX_POLLS {
        let reached = resolve(emulator, &existing_host).await?.map(|r| r.resource_id);
        let done = reached.as_deref() == Some(new_id);
        seen.push(reached);
        if done {
            break;
        }
    }
    ensure!(
        seen.first().and_then(|r| r.as_deref()) == Some(old_id),
        "the existing name did not first reach the old cluster: {seen:?}"
    );
    ensure!(
        seen.last().and_then(|r| r.as_deref()) == Some(new_id),
        "the existing name never reached the new cluster: {seen:?}"
    );
    let mut temp = Vec::new();
    for _ in 0..MAX_POLLS {
        let reached = resolve(emulator, &temp_host).await?.map(|r| r.identifier);
        let done = reached.is_none();
        temp.push(reached);
        if done {
            break;
        }
    }
    ensure!(
        temp.first() == Some(&Some("existing".to_owned())),
        "the temporary name did not linger: {temp:?}"
    );
    ensure!(temp.last() == Some(&None), "the temporary name never stopped resolving: {temp:?}");
    Ok(())
}
