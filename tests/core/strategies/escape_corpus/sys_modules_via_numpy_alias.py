# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: a module reached as an attribute of an allowed one (ta.trend.np) leads on to numpy's own sys
# stage: refused
# where: init
# expect: ForbiddenOperation
modules = ta.trend.np.core.multiarray.sys.modules
raise ValueError(str(list(modules)))
