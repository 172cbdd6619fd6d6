# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: hand pandas' agg to numpy.vectorize so the function name arrives as array data
# stage: runtime
# where: init
# expect: ForbiddenOperation
dispatch = numpy.vectorize(pandas.DataFrame({"a": [1.0]}).agg, otypes="O")
raise ValueError(str(dispatch(["eval"])))
