# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: reach sys from a generator's frame globals and rewrite the hook's module
# stage: refused
# where: init
# expect: StrategyCodeError
gen = (x for x in [1])
outer = gen.gi_frame.f_back.f_globals
outer["sys"].modules["core.strategies.sandbox_child"].SandboxViolation = ValueError
