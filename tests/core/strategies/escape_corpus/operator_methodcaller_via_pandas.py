# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: reach operator.methodcaller through pandas' internals and call format on a string
# stage: refused
# where: init
# expect: ForbiddenOperation
caller = pandas.core.ops.operator.methodcaller("format", self)
raise ValueError(caller("{0.init.__func__.__globals__}"))
