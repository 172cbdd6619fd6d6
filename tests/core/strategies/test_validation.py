"""Static validation of strategy code: precise errors with lines, and no crash on any input."""

from __future__ import annotations

import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from core.strategies.templates import get_template
from core.strategies.validation import MAX_CODE_CHARS, validate_strategy_code

HEADER = "import ta\nfrom core.strategies import Strategy\n\n"


def strategy(body: str, header: str = HEADER) -> str:
    return header + "class Mine(Strategy):\n" + textwrap.indent(textwrap.dedent(body), "    ")


def only_error(code: str) -> dict:
    report = validate_strategy_code(code)
    assert not report.ok
    return report.errors[0]


def test_template_is_valid_and_reports_class_and_params():
    report = validate_strategy_code(get_template("sma_cross").code)
    assert report.ok, report.errors
    assert report.class_name == "SmaCross"
    assert report.params == {"fast": 10, "slow": 30}


def test_syntax_error_points_to_line_and_column():
    code = "from core.strategies import Strategy\nclass A(Strategy):\n    def init(self)\n        pass\n"
    error = only_error(code)
    assert error["line"] == 3
    assert error["message"].startswith("syntax error")
    assert error["col"] >= 0


def test_forbidden_import_names_the_module_and_the_allow_list():
    error = only_error("import os\n" + strategy("pass\n"))
    assert error["line"] == 1
    assert "'os'" in error["message"] and "numpy" in error["message"]


def test_allowed_imports_pass():
    header = (
        "import math\nimport numpy as np\nimport pandas as pd\nfrom decimal import Decimal\n"
        "from datetime import timedelta\nfrom statistics import mean\nfrom ta.trend import sma_indicator\n"
        "from core.strategies import Strategy, Position, crossed_above, crossed_below\n\n"
    )
    assert validate_strategy_code(strategy("pass\n", header=header)).ok


def test_contract_module_only_exports_the_contract():
    header = "from core.strategies import Strategy, StrategyRuntime\n\n"
    error = only_error(strategy("pass\n", header=header))
    assert "StrategyRuntime" in error["message"]
    bare = only_error("import core.strategies\n" + strategy("pass\n"))
    assert "from core.strategies import Strategy" in bare["message"]


def test_dunder_and_private_attributes_are_refused_with_the_line():
    code = strategy("""
        def should_long(self):
            return self._cursor > 0
        def should_exit(self):
            return self.__class__ is None
    """)
    report = validate_strategy_code(code)
    lines = {e["line"] for e in report.errors}
    assert not report.ok and {7, 9} <= lines
    assert any("'_cursor'" in e["message"] for e in report.errors)


def test_dangerous_builtins_are_refused_with_a_reason():
    for name, call in (("eval", "eval('1')"), ("open", "open('/etc/passwd')"), ("getattr", "getattr(self, 'x')"),
                       ("globals", "globals()"), ("vars", "vars(self)"), ("exec", "exec('1')")):
        error = only_error(strategy(f"def init(self):\n    {call}\n"))
        assert error["line"] == 6, name
        assert name in error["message"]


def test_file_and_format_methods_are_refused():
    for call in ("self.data.close.to_csv('x')", "numpy.save('x', 1)", "'{0}'.format(1)", "pandas.read_csv('x')"):
        code = strategy(f"def init(self):\n    {call}\n", header="import numpy\nimport pandas\n" + HEADER)
        assert not validate_strategy_code(code).ok, call
    assert validate_strategy_code(strategy("def init(self):\n    x = self.data.close.to_numpy()\n")).ok


def test_exactly_one_strategy_class():
    none = only_error("import math\nclass Helper:\n    pass\n")
    assert "no strategy found" in none["message"]
    two = validate_strategy_code(strategy("pass\n") + "\nclass Other(Strategy):\n    pass\n")
    assert not two.ok and any("exactly one" in e["message"] for e in two.errors)


def test_params_must_be_a_json_literal():
    assert validate_strategy_code(strategy('params = {"a": 1, "b": [1.5, "x"], "c": True}\n')).params == {
        "a": 1, "b": [1.5, "x"], "c": True,
    }
    for params, fragment in (("{'a': len('x')}", "literal"), ("[1, 2]", "dict"), ("{1: 2}", "keys"),
                             ("{'a': {1, 2}}", "number, string"), ("{'a': 1e999}", "finite")):
        error = only_error(strategy(f"params = {params}\n"))
        assert error["line"] == 5 and fragment in error["message"], (params, error)


def test_module_level_code_is_refused():
    error = only_error("from core.strategies import Strategy\nfor i in range(3):\n    pass\n" + strategy("pass\n", ""))
    assert error["line"] == 2 and "module level" in error["message"]


def test_augmented_attribute_assignment_is_explained():
    error = only_error(strategy("def init(self):\n    self.count = 0\n    self.count += 1\n"))
    assert error["line"] == 7 and "Augmented assignment" in error["message"]


def test_oversized_code_is_refused_without_parsing():
    error = only_error("#" * (MAX_CODE_CHARS + 1))
    assert "too long" in error["message"]


def test_errors_are_sorted_by_line():
    code = "import os\nimport socket\n" + strategy("def init(self):\n    eval('1')\n")
    lines = [e["line"] for e in validate_strategy_code(code).errors]
    assert lines == sorted(lines) and lines[:2] == [1, 2]


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400))
def test_any_text_gets_a_report_never_an_exception(text):
    report = validate_strategy_code(text)
    assert report.ok == (not report.errors)
    for error in report.errors:
        assert isinstance(error["line"], int) and error["line"] >= 1
        assert isinstance(error["message"], str) and error["message"]
    if report.ok:
        assert report.class_name


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["os", "sys", "socket", "subprocess", "ctypes", "importlib", "pickle",
                                 "numpy.lib", "pandas.io", "numpy.ctypeslib", "builtins", "io"]), min_size=1))
def test_no_forbidden_import_ever_passes(modules):
    code = "".join(f"import {m}\n" for m in modules) + strategy("pass\n")
    report = validate_strategy_code(code)
    assert not report.ok
    assert {e["line"] for e in report.errors} >= set(range(1, len(modules) + 1))
