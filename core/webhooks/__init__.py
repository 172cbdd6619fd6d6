"""TradingView webhooks: alerts become orders, every request is kept, missed alerts are noticed."""
