# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: Series.apply given the name '__import__' with a module name as the data
# stage: refused
# where: init
# expect: ForbiddenOperation
raise ValueError(str(pandas.Series(["os"]).apply("__import__")))
