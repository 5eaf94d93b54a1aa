"""The Gateway: order manager, report ingest, recovery, callback dispatch."""

from livegate.engine.gateway import Gateway, GatewayConfig
from livegate.engine.order_book import OrderBook
from livegate.engine.sync_facade import SyncGateway

__all__ = ["Gateway", "GatewayConfig", "OrderBook", "SyncGateway"]
