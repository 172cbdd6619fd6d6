# ruff: noqa  (a snippet of an escape attempt, wrapped into a strategy by test_escapes.py)
# attempt: numpy.f2py builds and loads a C extension from source text
# stage: refused
# where: init
# expect: ForbiddenOperation
numpy.f2py.compile("      subroutine x\n      end\n", modulename="pwned")
