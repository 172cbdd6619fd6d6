# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: import more than the contract from core.strategies (the runtime and its modules)
# stage: refused
# where: init
# expect: ForbiddenOperation
from core.strategies import StrategyRuntime

raise ValueError(str(StrategyRuntime))
