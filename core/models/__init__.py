"""All ORM models; importing this package registers every table on `Base.metadata`."""

from core.models.arb import ArbIntent, ArbLeg, ArbOperatorAction, ArbPosition
from core.models.backtests import BacktestRun
from core.models.bots import Bot, BotChange, BotTick
from core.models.brokers import BrokerConnection, SymbolRule
from core.models.candles import Candle
from core.models.orders import Fill, Order, OrderEvent, TrailingWatch
from core.models.strategies import StrategyRecord, StrategyVersion
from core.models.users import User
from core.models.webhooks import Webhook, WebhookAlert, WebhookExpectation

__all__ = [
    "BrokerConnection",
    "Candle",
    "Fill",
    "Order",
    "OrderEvent",
    "StrategyRecord",
    "StrategyVersion",
    "SymbolRule",
    "User",
]
__all__ += ["Webhook", "WebhookAlert", "WebhookExpectation"]
__all__ += ["ArbIntent", "ArbLeg", "ArbOperatorAction", "ArbPosition"]
__all__ += ["BacktestRun"]
__all__ += ["Bot", "BotChange", "BotTick"]
__all__ += ["TrailingWatch"]
from core.models.switches import SystemSwitch  # noqa: E402

__all__ += ["SystemSwitch"]
from core.models.notifications import Notification, NotificationChannel  # noqa: E402

__all__ += ["Notification", "NotificationChannel"]
from core.models.venue import VenueAnswer, VenueBalance, VenueFinding  # noqa: E402

__all__ += ["VenueAnswer", "VenueBalance", "VenueFinding"]
