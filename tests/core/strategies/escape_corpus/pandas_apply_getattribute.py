# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: Series.apply with the name '__getattribute__' reads any attribute past the guard
# stage: refused
# where: init
# expect: ForbiddenOperation
manager = pandas.Series([1.0]).apply("__getattribute__", args=("_mgr",))
raise ValueError(str(manager))
