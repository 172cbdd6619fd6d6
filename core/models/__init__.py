"""All ORM models; importing this package registers every table on `Base.metadata`."""

from core.models.brokers import VENUES, BrokerConnection, SymbolRule
from core.models.users import User

__all__ = ["VENUES", "BrokerConnection", "SymbolRule", "User"]
