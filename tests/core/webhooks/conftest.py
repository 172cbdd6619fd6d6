from tests.core.webhooks.fixtures import broker_of, webhook_of  # noqa: F401
