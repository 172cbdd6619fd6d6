# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: DataFrame.eval with an @local reference walking from self to the sandbox's globals
# stage: refused
# where: init
# expect: ForbiddenOperation
frame = pandas.DataFrame({"a": [1.0]})
me = self
raise ValueError(str(frame.eval("@me.init.__func__.__globals__")))
