# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: format-string attribute walk to the module globals of a function
# stage: refused
# where: init
# expect: ForbiddenOperation
raise ValueError("{0.init.__globals__}".format(self))
