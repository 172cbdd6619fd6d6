from tests.core.webhooks.fixtures import broker_of, orders_queue, webhook_of  # noqa: F401
