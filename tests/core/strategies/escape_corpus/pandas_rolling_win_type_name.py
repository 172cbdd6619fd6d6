# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: rolling(win_type=...) looks the name up in scipy.signal.windows and calls what it finds
# stage: refused
# where: init
# expect: ForbiddenOperation
raise ValueError(str(pandas.Series([1.0, 2.0]).rolling(2, win_type="__class__").sum()))
