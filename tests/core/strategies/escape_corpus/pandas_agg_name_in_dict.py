# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: agg with a dict whose function names hide 'query' next to legitimate reductions
# stage: refused
# where: init
# expect: ForbiddenOperation
frame = pandas.DataFrame({"a": [1.0], "b": [2.0]})
frame.agg({"a": ["sum", "max"], "b": "query"}, expr="a > 0")
