# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: read a secret file through numpy.loadtxt / genfromtxt
# stage: refused
# where: init
# expect: ForbiddenOperation
raise ValueError(str(numpy.genfromtxt("@SECRET_FILE@", dtype=str)))
