# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: DataFrame.transform / apply given the name 'eval' with an expression reaching globals
# stage: refused
# where: init
# expect: ForbiddenOperation
frame = pandas.DataFrame({"a": [1.0]})
frame.apply("eval", expr="a.__class__.__init__.__globals__")
