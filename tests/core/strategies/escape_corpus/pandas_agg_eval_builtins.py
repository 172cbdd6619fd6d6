# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: issue 13 step 1: DataFrame.agg('eval') runs pandas' expression engine, which walks dunders to the real builtins
# stage: refused
# where: init
# expect: ForbiddenOperation
frame = pandas.DataFrame({"a": [1.0]})
found = frame.agg("eval", expr="a.__class__.__init__.__globals__['__builtins__']['__import__']('os')")
raise ValueError(str(found))
