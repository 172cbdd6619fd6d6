"""Static validation of strategy code: precise errors with lines, and no crash on any input."""

from __future__ import annotations

import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from core.strategies.policy import NAME_DISPATCH_METHODS, SAFE_FUNCTION_NAMES
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
    for name, call in (
        ("eval", "eval('1')"),
        ("open", "open('/etc/passwd')"),
        ("getattr", "getattr(self, 'x')"),
        ("globals", "globals()"),
        ("vars", "vars(self)"),
        ("exec", "exec('1')"),
    ):
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
        "a": 1,
        "b": [1.5, "x"],
        "c": True,
    }
    for params, fragment in (
        ("{'a': len('x')}", "literal"),
        ("[1, 2]", "dict"),
        ("{1: 2}", "keys"),
        ("{'a': {1, 2}}", "number, string"),
        ("{'a': 1e999}", "finite"),
    ):
        error = only_error(strategy(f"params = {params}\n"))
        assert error["line"] == 5 and fragment in error["message"], (params, error)


def test_module_level_code_is_refused():
    error = only_error("from core.strategies import Strategy\nfor i in range(3):\n    pass\n" + strategy("pass\n", ""))
    assert error["line"] == 2 and "module level" in error["message"]


def test_augmented_assignment_of_a_slice_is_explained():
    error = only_error(strategy("def init(self):\n    self.counts = [0, 0]\n    self.counts[0:1] += [1]\n"))
    assert error["line"] == 7 and "augmented assignment of a slice" in error["message"]


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
@given(
    st.lists(
        st.sampled_from(
            [
                "os",
                "sys",
                "socket",
                "subprocess",
                "ctypes",
                "importlib",
                "pickle",
                "numpy.lib",
                "pandas.io",
                "numpy.ctypeslib",
                "builtins",
                "io",
            ]
        ),
        min_size=1,
    )
)
def test_no_forbidden_import_ever_passes(modules):
    code = "".join(f"import {m}\n" for m in modules) + strategy("pass\n")
    report = validate_strategy_code(code)
    assert not report.ok
    assert {e["line"] for e in report.errors} >= set(range(1, len(modules) + 1))


def test_pandas_methods_taking_function_names_refuse_names_beyond_plain_reductions():
    header = "import pandas as pd\n" + HEADER
    for call, where in (
        ("s.agg('eval', expr='a')", "'eval'"),
        ("s.apply('__getattribute__')", "'__getattribute__'"),
        ("s.transform('query')", "'query'"),
        ("s.pipe('sum')", "'sum'"),
        ("s.map('eval')", "'eval'"),
        ("s.rolling(3).agg('to_csv')", "'to_csv'"),
        ("s.resample('1h').apply('lib')", "'lib'"),
        ("s.agg(['sum', 'eval'])", "'eval'"),
        ("s.agg({'a': ['max', 'query']})", "'query'"),
        ("s.groupby('a').agg(out=('a', 'eval'))", "'eval'"),
        ("s.apply(func='exec')", "'exec'"),
        ("s.groupby('a').agg(out='__reduce_ex__')", "'__reduce_ex__'"),
        ("s.groupby('a').agg(out=pd.NamedAgg('a', aggfunc='eval'))", "'eval'"),
        ("s.rolling(3, win_type='__class__')", "'__class__'"),
        ("s.rolling(3, None, False, 'get_window')", "'get_window'"),
        ("s.rolling(3, win_type='han' + 'n')", "built from strings"),
        ("s.apply('to' + '_csv')", "built from strings"),
        ("s.agg(f'{x}')", "built from strings"),
    ):
        error = only_error(strategy(f"def init(self):\n    s = pd.Series([1.0])\n    x = 'e'\n    {call}\n", header))
        assert error["line"] == 9 and where in error["message"], (call, error)
    legit = (
        "s.agg('sum')", "s.rolling(3).agg(['mean', 'max'])", "s.rolling(3).apply(len)", "s.map({'a': 'eval'})",
        "s.resample('1h').agg({'open': 'first', 'high': 'max', 'low': 'min', 'close': 'last'})",
        "s.groupby('a').agg(out=('a', 'sum'))", "s.pipe((len, 'obj'))", "s.apply(lambda v: 'up' if v else 'down')",
        "s.agg(len, expr='kept for the function')", "s.groupby('a').agg(out='sum')",
        "s.groupby('a').agg(out=pd.NamedAgg('a', 'max'))", "s.rolling(3, win_type='hann').sum()",
    )  # fmt: skip
    for call in legit:
        assert validate_strategy_code(
            strategy(f"def init(self):\n    s = pd.Series([1.0])\n    {call}\n", header)
        ).ok, call


def test_module_attribute_chains_stay_inside_the_allowed_libraries():
    header = "import numpy as np\nimport statistics\nfrom ta import utils\n" + HEADER
    for chain, shown in (
        ("ta.trend.np.core", "ta.trend.np.core"),
        ("utils.pd.io", "ta.utils.pd.io"),
        ("statistics.sys", "statistics.sys"),
        ("np.test", "numpy.test"),
        ("ta.trend.np.random.bit_generator.os", "bit_generator.os"),
    ):
        error = only_error(strategy(f"def init(self):\n    x = {chain}\n", header))
        assert error["line"] == 9 and shown in error["message"], (chain, error)
    assert validate_strategy_code(strategy("def init(self):\n    x = ta.trend.np.random\n", header)).ok


def test_frame_generator_coroutine_and_ffi_internals_are_refused():
    for chain in (
        "gen.gi_frame",
        "gen.gi_code",
        "co.cr_frame",
        "agen.ag_frame",
        "frame.f_back",
        "frame.f_globals",
        "tb.tb_frame",
        "code.co_consts",
        "rng.cffi",
        "rng.ctypes",
        "rng.capsule",
        "s.plot",
        "s.style",
        "pd.set_option",
        "pd.options",
        "s.hist",
    ):
        code = strategy(f"def init(self):\n    x = {chain}\n", "import pandas as pd\n" + HEADER)
        error = only_error(code)
        assert error["line"] == 7 and chain.split(".")[1] in error["message"], (chain, error)


@settings(max_examples=80, deadline=None)
@given(st.from_regex(r"_[A-Za-z0-9_]{0,12}", fullmatch=True))
def test_every_private_attribute_name_is_refused_on_save(name):
    error = only_error(strategy(f"def init(self):\n    x = self.data.{name}\n"))
    assert error["line"] == 6


@settings(max_examples=80, deadline=None)
@given(
    st.text(min_size=1, max_size=20).filter(lambda name: name not in SAFE_FUNCTION_NAMES),
    st.sampled_from(sorted(NAME_DISPATCH_METHODS)),
)
def test_no_function_name_outside_the_safe_set_passes_a_name_taking_method(name, method):
    error = only_error(strategy(f"def init(self):\n    self.data.close.{method}({name!r})\n"))
    assert error["line"] == 6 and "function name" in error["message"]


def test_a_strategy_may_name_its_own_attributes_like_pandas_plotting():
    code = strategy("def init(self):\n    self.style = 'aggressive'\n    self.plot = self.style\n")
    assert validate_strategy_code(code).ok
