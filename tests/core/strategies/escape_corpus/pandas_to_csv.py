# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: write a file through DataFrame.to_csv
# stage: refused
# where: init
# expect: ForbiddenOperation
pandas.DataFrame({"a": [1]}).to_csv("@MARKER@")
