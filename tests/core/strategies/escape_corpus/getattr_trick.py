# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: dynamic attribute access to a dunder with getattr and a built-up name
# stage: refused
# where: init
# expect: NameError
name = "_" + "_class_" + "_"
raise ValueError(str(getattr(self, name)))
