"""Magics and shell lines become Python where meaningful, comments otherwise; the result
always parses (at any nesting depth), and text inside strings is never touched."""

from __future__ import annotations

import ast

import pytest

from nbmlops.export.translate import translate_cell


def _python(source: str) -> str:
    code = translate_cell(source).code
    ast.parse(code)  # always valid Python
    return code


def _lines(source: str) -> list[str]:
    return [line for line in _python(source).splitlines() if not line.lstrip().startswith("#")]


def test_plain_python_is_unchanged_comments_included() -> None:
    source = "# load\nx = 1  # one\n\ndef f():\n    return x\n"
    assert translate_cell(source).code == source


@pytest.mark.parametrize(
    ("source", "python"),
    [
        ("%time model.fit(X, y)", ["model.fit(X, y)"]),
        ("%timeit -n 3 -r 1 f(1)", ["f(1)"]),
        ("%%time\na = 1\nb = a + 1", ["a = 1", "b = a + 1"]),
        ("%%capture\nprint(1)", ["print(1)"]),
        ("%%timeit -n2 a = 1\nb = a + 1", ["a = 1", "b = a + 1"]),
        ("%env MODE=fast", ["import os", "os.environ['MODE'] = 'fast'"]),
        ("home = %env HOME", ["import os", "home = os.environ.get('HOME')"]),
        (
            "files = !ls data",
            [
                "import subprocess",
                "files = subprocess.run('ls data', shell=True, capture_output=True, text=True, check=False).stdout.splitlines()",
            ],
        ),
        (
            "%mlops param depth={DEPTH} model=rf",
            [
                "import nbmlops",
                "nbmlops.log_params({'depth': DEPTH, 'model': 'rf'})",
            ],
        ),
        (
            "%mlops metric f1={score} acc=0.5 --step 2",
            [
                "import nbmlops",
                "nbmlops.log_metrics({'f1': float(score), 'acc': 0.5}, step=2)",
            ],
        ),
        ("%mlops tag stage=dev", ["import nbmlops", "nbmlops.set_tags({'stage': 'dev'})"]),
        ("%%mlops run --name baseline\nmodel.fit(X, y)", ["model.fit(X, y)"]),
    ],
)
def test_translated_to_python(source: str, python: list[str]) -> None:
    assert _lines(source) == python


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("%matplotlib inline", "not needed outside a notebook"),
        ("%load_ext nbmlops", "notebook extension"),
        ("%pip install scikit-learn", "requirements.txt"),
        ("!pip install -q pandas", "requirements.txt"),
        ("!echo hello", "shell command not run"),
        ("%mlops autolog on --experiment churn", "opens its own run"),
        ("%mlops register last churn --alias challenger", "--register"),
        ("df?", "help"),
        ("%%bash\necho hi\nls", "not Python"),
        ("%%html\n<b>x</b>", "not Python"),
    ],
)
def test_commented_out_with_a_note(source: str, why: str) -> None:
    translation = translate_cell(source)
    assert translation.magic_only
    assert _lines(source) == []
    first = source.splitlines()[0].lstrip("%!")
    assert first.split()[0].rstrip("?") in translation.code
    assert why in translation.code
    assert translation.notes and not translation.warnings


@pytest.mark.parametrize(
    ("source", "warning"),
    [
        ("%cd /data", "working-directory change not exported"),
        ("%run helpers.py", "%run is not exported"),
        ("%frobnicate 3", "unknown magic %frobnicate"),
        ("%%capture out\nx = 1", "'out' is not available"),
        ("listing = !ls {folder}", "'listing' is set to None"),
    ],
)
def test_behaviour_changes_are_warnings(source: str, warning: str) -> None:
    translation = translate_cell(source)
    ast.parse(translation.code)
    assert any(warning in w for w in translation.warnings), translation.warnings


def test_magics_inside_blocks_keep_the_block_valid() -> None:
    source = "for i in range(3):\n    !echo {i}\n    %time f(i)\nif ok:\n    %matplotlib inline\n"
    code = _python(source)
    tree = ast.parse(code)
    loop, branch = tree.body
    assert isinstance(loop, ast.For) and isinstance(branch, ast.If)
    assert [type(s).__name__ for s in loop.body] == ["Pass", "Expr"]
    assert [type(s).__name__ for s in branch.body] == ["Pass"]


def test_text_inside_strings_is_not_a_magic() -> None:
    source = "query = '''\n%not_a_magic\n!not_a_command\n'''\n"
    assert translate_cell(source).code == source


def test_continuation_lines_belong_to_their_magic() -> None:
    (line,) = _lines("%time total = a + \\\n    b")
    assert " ".join(line.split()) == "total = a + b"


def test_get_ipython_guard_is_commented_out() -> None:
    source = "if get_ipython() is not None:\n    x = 1\ny = 2\n"
    translation = translate_cell(source)
    assert [line for line in translation.code.splitlines() if not line.startswith("#")] == ["y = 2"]
    assert any("get_ipython" in w for w in translation.warnings)


def test_writefile_writes_the_file() -> None:
    code = _python("%%writefile settings.txt\nalpha=1\n")
    assert "pathlib.Path('settings.txt').open('w'" in code
    assert "_file.write('alpha=1\\n')" in code


def test_invalid_python_raises_syntax_error() -> None:
    with pytest.raises(SyntaxError):
        translate_cell("x = (\n")
