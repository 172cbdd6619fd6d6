# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: str.format handed to Series.map walks attributes of every element
# stage: refused
# where: init
# expect: ForbiddenOperation
walker = "{0.init.__func__.__globals__}".format
raise ValueError(str(pandas.Series([self], dtype=object).map(walker)))
