# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: groupby().agg with pandas.NamedAgg whose aggfunc is the name 'eval'
# stage: refused
# where: init
# expect: ForbiddenOperation
frame = pandas.DataFrame({"a": [1.0], "b": [2.0]})
frame.groupby("a").agg(out=pandas.NamedAgg(column="b", aggfunc="eval"))
