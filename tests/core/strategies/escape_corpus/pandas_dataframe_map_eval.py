# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: DataFrame.map given the name 'eval' for every cell
# stage: refused
# where: init
# expect: ForbiddenOperation
pandas.DataFrame({"a": ["__import__('os')"]}).map("eval")
