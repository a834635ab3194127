"""Composition root: settings + catalog + adapters → one Service per container."""

from __future__ import annotations

import functools
import os

from chalicelib.adapters import aws
from chalicelib.adapters.dms import DmsTasks
from chalicelib.adapters.ledger import DynamoLedger
from chalicelib.adapters.notify import EventNotifier
from chalicelib.adapters.queue import SqsQueues
from chalicelib.adapters.redshift_direct import DirectWarehouse
from chalicelib.adapters.statement_store import DynamoStatementStore
from chalicelib.adapters.storage import S3Storage
from chalicelib.adapters.warehouse import DataApiWarehouse
from chalicelib.adapters.warehouse_router import WarehouseRouter
from chalicelib.followups import Followups
from chalicelib.moves import Moves
from chalicelib.pipelines import Catalog, load_catalog
from chalicelib.service import Service
from chalicelib.settings import Settings


@functools.lru_cache(maxsize=None)
def settings() -> Settings:
    return Settings.from_env()


@functools.lru_cache(maxsize=None)
def catalog() -> Catalog:
    """Loaded and validated once per cold start; an invalid catalog fails the start loudly."""
    return load_catalog(settings().catalog_path)


@functools.lru_cache(maxsize=None)
def queues() -> SqsQueues:
    s = settings()
    return SqsQueues(landing_queue=s.landing_queue, jobs_queue=s.jobs_queue)


@functools.lru_cache(maxsize=None)
def service() -> Service:
    s = settings()
    built = Service(catalog=catalog(), settings=s, ledger=DynamoLedger(s.ledger_table, ttl_days=s.file_ttl_days),
                    queue=queues(), warehouse=warehouse(), storage=S3Storage(),
                    notifier=EventNotifier(source=s.event_source, failure_topic_arn=s.failure_topic_arn))
    Moves(built)  # registers the unload / archive / copy job kinds and the schedules on the service
    return built


@functools.lru_cache(maxsize=None)
def moves() -> Moves:
    return Moves.of(service())


@functools.lru_cache(maxsize=None)
def warehouse() -> WarehouseRouter:
    """The Data API, or redshift-connector for warehouses with connection = "direct"."""
    return WarehouseRouter(DataApiWarehouse(), direct_warehouse)


@functools.lru_cache(maxsize=None)
def direct_warehouse() -> DirectWarehouse:
    # REDSHIFT_DIRECT_ENDPOINT ("host:port") points every direct warehouse at devstack's local
    # Redshift-protocol endpoint, as AWS_ENDPOINT_URL_* points the SDK at moto; unset when deployed.
    return DirectWarehouse(store=DynamoStatementStore(settings().ledger_table), warehouses=catalog().warehouses,
                           endpoint_override=os.environ.get("REDSHIFT_DIRECT_ENDPOINT") or None)


@functools.lru_cache(maxsize=None)
def followups() -> Followups:
    return Followups(service(), DmsTasks())


def reset() -> None:
    """Drop everything cached (tests and devstack change the environment between runs)."""
    for cached in (settings, catalog, queues, warehouse, direct_warehouse, service, followups, moves):
        cached.cache_clear()
    aws.reset()
