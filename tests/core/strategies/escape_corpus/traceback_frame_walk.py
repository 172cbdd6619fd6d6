# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: walk frames from a caught exception's traceback
# stage: refused
# where: init
# expect: StrategyCodeError
try:
    1 / 0
except ZeroDivisionError as exc:
    raise ValueError(str(exc.__traceback__.tb_frame.f_back.f_globals))
