# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: read the environment by walking from pandas to its os module
# stage: refused
# where: init
# expect: ForbiddenOperation
raise ValueError(str(pandas.io.common.os.environ))
