# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: resample().apply given the name 'lib': pandas falls back to getattr(numpy, name)
# stage: refused
# where: init
# expect: ForbiddenOperation
series = pandas.Series([1.0, 2.0], index=pandas.to_datetime([0, 3600], unit="s"))
raise ValueError(str(series.resample("1h").apply("lib")))
