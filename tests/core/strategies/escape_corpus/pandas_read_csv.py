# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: read a secret file through pandas.read_csv
# stage: refused
# where: init
# expect: ForbiddenOperation
raise ValueError(str(pandas.read_csv("@SECRET_FILE@", header=None)))
