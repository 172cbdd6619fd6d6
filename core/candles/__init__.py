"""Candles: closed-candle model, multi-timeframe aggregation, storage, import/download, bot-tick hook."""
