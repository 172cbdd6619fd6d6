# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: DataFrame.query with backtick-quoted names and an @local reaching object's subclasses
# stage: refused
# where: init
# expect: ForbiddenOperation
frame = pandas.DataFrame({"a b": [1.0]})
me = self
frame.query("`a b` > @me.__class__.__mro__[-1].__subclasses__().__len__()")
