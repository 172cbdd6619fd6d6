"""The perp simulator process: the Vest and Paradex faces over one correlated market (`python -m sim.perp`)."""
