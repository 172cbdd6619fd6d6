# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: the function name comes from a variable, so no literal is there to refuse on save
# stage: runtime
# where: init
# expect: ForbiddenOperation
name = "ev" + "al"
frame = pandas.DataFrame({"a": [1.0]})
raise ValueError(str(frame.agg(name, expr="a.__class__.__init__.__globals__")))
