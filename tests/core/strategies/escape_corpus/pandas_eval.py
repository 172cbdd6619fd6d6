# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: pandas.eval / DataFrame.query expression engines
# stage: refused
# where: init
# expect: ForbiddenOperation
pandas.eval("1 + 1")
