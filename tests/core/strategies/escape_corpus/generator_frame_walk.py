# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: walk frames from a generator to the sandbox's own globals
# stage: refused
# where: init
# expect: StrategyCodeError
gen = (x for x in [1])
raise ValueError(str(gen.gi_frame.f_back.f_globals))
