# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: DataFrame.pipe with a function name as a string
# stage: refused
# where: init
# expect: ForbiddenOperation
pandas.DataFrame({"a": [1.0]}).pipe("eval", "a.__class__.__init__.__globals__")
