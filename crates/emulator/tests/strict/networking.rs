//! compat/networking.py: the PubliclyAccessible default (API reference,
//! CreateDBInstance and RestoreDBClusterFromSnapshot `PubliclyAccessible`).

use aurora_dr_emulator::Emulator;

use crate::*;

rds_behaviour!(
    /// An instance created without PubliclyAccessible in a cluster without a
    /// DB subnet group lands in the default VPC, which has an internet
    /// gateway: DescribeDBInstances reports it public. Asked private, it is.
    instances_in_the_default_vpc_are_public_by_default => instances_public_check
);

async fn instances_public_check(emulator: &Emulator) -> Check {
    let rds = rds(emulator, TARGET, TARGET_REGION).await;
    new_cluster(&rds, "dr", false).await?;
    new_instance(&rds, "dr", "dr-1").await?;
    ok(
        "CreateDBInstance PubliclyAccessible=false",
        rds.create_db_instance()
            .db_instance_identifier("dr-2")
            .db_cluster_identifier("dr")
            .engine(ENGINE)
            .db_instance_class("db.r6g.large")
            .publicly_accessible(false)
            .send()
            .await,
    )?;
    let out = ok("DescribeDBInstances", rds.describe_db_instances().send().await)?;
    let public = |id: &str| {
        out.db_instances()
            .iter()
            .find(|i| i.db_instance_identifier() == Some(id))
            .and_then(|i| i.publicly_accessible())
    };
    ensure!(
        public("dr-1") == Some(true),
        "default instance reported PubliclyAccessible {:?}",
        public("dr-1")
    );
    ensure!(
        public("dr-2") == Some(false),
        "private instance reported PubliclyAccessible {:?}",
        public("dr-2")
    );
    Ok(())
}
