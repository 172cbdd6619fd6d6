"""The exchange simulators, each a process: `sim.spot` (Binance protocol) and `sim.perp` (Vest and Paradex)."""
