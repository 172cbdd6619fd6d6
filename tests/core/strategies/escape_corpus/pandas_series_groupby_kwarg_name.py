# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: a grouped Series takes named aggregations as out='name': the name is looked up on the group
# stage: refused
# where: init
# expect: ForbiddenOperation
series = pandas.Series([1.0, 2.0])
raise ValueError(str(series.groupby([1, 1]).agg(out="__reduce_ex__")))
