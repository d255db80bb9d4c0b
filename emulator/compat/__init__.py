"""Compatibility layer: makes moto refuse what RDS refuses and take the time
RDS takes, one module per RDS concern. Each module's docstring cites the AWS
pages it follows; README.md lists every behaviour with its switch and test.

`apply(routes)` installs them all, before the server starts. The order
matters where several modules wrap one moto method: modules installed later
wrap the earlier ones, so their checks run first (identifiers before quotas
before the rest), and the copy lock is outermost.
"""

import threading

from compat import (
    deletion,
    dns,
    encryption,
    identifiers,
    lambda_targets,
    networking,
    quotas,
    rds_events,
    restore,
    serverless,
    snapshots,
    sns,
    transitions,
)
from compat.common import wrap

MODULES = (
    snapshots,
    restore,
    transitions,
    dns,
    encryption,
    serverless,
    networking,
    deletion,
    quotas,
    identifiers,
    sns,
    lambda_targets,
    rds_events,
)

COPY_LOCK = threading.Lock()


def serialise_copies():
    """The copy quota check and the new copy are one step."""
    from moto.rds import models as rds

    @wrap(rds.RDSBackend, "copy_db_cluster_snapshot")
    def copy(original, self, *args, **kwargs):
        with COPY_LOCK:
            return original(self, *args, **kwargs)


def apply(routes):
    """Installs every module; `routes` receives their control endpoints."""
    for module in MODULES:
        module.install()
        routes.update(getattr(module, "ROUTES", {}))
    serialise_copies()
    return [module.__name__.split(".")[-1] for module in MODULES]
