# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: rolling().agg given a dunder method name
# stage: refused
# where: init
# expect: ForbiddenOperation
raise ValueError(str(pandas.Series([1.0, 2.0]).rolling(1).agg("__reduce_ex__", 2)))
