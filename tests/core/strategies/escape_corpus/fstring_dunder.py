# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: f-string with dunder attribute access
# stage: refused
# where: init
# expect: StrategyCodeError
raise ValueError(f"{self.__class__.__init__.__globals__}")
