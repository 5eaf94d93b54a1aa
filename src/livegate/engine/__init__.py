"""The Gateway: order manager, report ingest, recovery, callback dispatch."""

from livegate.engine.config import GatewayConfig
from livegate.engine.gateway import Gateway
from livegate.engine.order_book import OrderBook
from livegate.engine.sync_facade import SyncGateway

__all__ = ["Gateway", "GatewayConfig", "OrderBook", "SyncGateway"]
