# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: write a file through pandas' dispatch of method names given as strings (no to_* in the code)
# stage: refused
# where: init
# expect: ForbiddenOperation,PermissionError,StrategyError
pandas.Series([1.0, 2.0]).apply("to" + "_csv", args=("@MARKER@",))
