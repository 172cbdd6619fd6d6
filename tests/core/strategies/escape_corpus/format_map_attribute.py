# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: format_map attribute walk
# stage: refused
# where: init
# expect: ForbiddenOperation
raise ValueError("{s.init.__func__.__globals__}".format_map({"s": self}))
