# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: expanding().agg given '__getattribute__' to read a private attribute of the window
# stage: refused
# where: init
# expect: ForbiddenOperation
raise ValueError(str(pandas.Series([1.0]).expanding().agg("__getattribute__", "_selected_obj")))
