"""IPython syntax in a cell -> plain Python: magics and shell lines translated or commented out.

IPython's own input transformer (:class:`IPython.core.inputtransformer2.TransformerManager`)
turns ``%magic``, ``%%cell_magic``, ``!cmd``, ``x = !cmd`` and ``obj?`` into calls such as
``get_ipython().run_line_magic('time', 'f()')``; it knows IPython's grammar (strings,
continuation lines, assignments), so nothing here re-implements it. This module then
replaces each of those calls, at any depth, by:

* the Python it stands for, where that is meaningful outside a notebook: ``%time stmt`` and
  ``%timeit stmt`` run ``stmt`` once, ``%%time``/``%%capture``/``%%mlops run`` cells keep
  their body, ``%env K=V`` sets ``os.environ``, ``%mlops param/metric/tag`` become
  ``nbmlops.log_params``/``log_metrics``/``set_tags``, ``x = !cmd`` becomes a
  ``subprocess.run`` call, ``%%writefile`` writes its file;
* otherwise a comment ``# nbmlops: <original line> (<why>)`` — plus ``pass`` where a block
  would become empty — so the result always parses.

Learned from jupytext's magic escaping (comment magics out, keep continuation lines with
their magic, never touch text inside strings) — here the tokenizing is IPython's.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import re
import shlex
from typing import Any

__all__ = ["Translation", "translate_cell"]

#: Line magics whose argument is a statement to run (timing/profiling wrappers).
_RUN_ARGUMENT = {
    "time": "timing dropped",
    "timeit": "ran many times for timing in the notebook; runs once here",
    "prun": "profiling dropped",
    "memit": "memory profiling dropped",
    "lprun": "line profiling dropped",
}
#: Cell magics whose body is plain Python to keep.
_KEEP_BODY = {
    "time": "timing dropped",
    "timeit": "ran many times for timing in the notebook; runs once here",
    "capture": "output capture dropped",
    "prun": "profiling dropped",
    "memit": "memory profiling dropped",
    "mlops": "the exported train.py logs one run of its own",
}
#: Line magics that only configure the interactive session.
_SESSION_ONLY = {
    "matplotlib": "not needed outside a notebook",
    "config": "notebook configuration, not needed",
    "load_ext": "notebook extension, not needed",
    "reload_ext": "notebook extension, not needed",
    "unload_ext": "notebook extension, not needed",
    "autoreload": "notebook reloading, not needed",
    "aimport": "notebook reloading, not needed",
    "precision": "display setting, not needed",
    "xmode": "traceback display setting, not needed",
    "pdb": "debugger setting, not needed",
    "debug": "debugger, not needed",
    "who": "namespace listing, not needed",
    "whos": "namespace listing, not needed",
    "who_ls": "namespace listing, not needed",
    "lsmagic": "magic listing, not needed",
    "history": "input history, not needed",
    "pinfo": "help, not needed",
    "pinfo2": "help, not needed",
    "pdoc": "help, not needed",
    "pdef": "help, not needed",
    "psource": "help, not needed",
    "pfile": "help, not needed",
    "pwd": "prints the working directory, not needed",
    "ls": "directory listing, not needed",
    "clear": "clears the output, not needed",
    "reset": "clears the namespace, not needed",
    "reset_selective": "clears the namespace, not needed",
    "tb": "traceback display, not needed",
    "page": "display, not needed",
    "pprint": "display setting, not needed",
    "colors": "display setting, not needed",
    "notebook": "notebook export, not needed",
    "save": "saves input history, not needed",
    "logstart": "session logging, not needed",
    "logstop": "session logging, not needed",
    "killbgscripts": "session control, not needed",
}
_INSTALLERS = ("pip", "conda", "mamba", "micromamba", "uv")
#: Cell magics whose body is not Python (commented out line by line).
_FOREIGN_CELL = {
    "bash",
    "sh",
    "script",
    "system",
    "html",
    "HTML",
    "javascript",
    "js",
    "latex",
    "markdown",
    "svg",
    "sql",
    "perl",
    "ruby",
    "python2",
    "pypy",
    "file",
    "debug",
    "sx",
}
_MLOPS_SESSION = {
    "autolog": "notebook autologging; the exported train.py opens its own run",
    "start": "a notebook parent run; the exported train.py opens its own run",
    "end": "a notebook parent run; the exported train.py opens its own run",
    "status": "notebook status, not needed",
    "runs": "run listing, not needed",
    "help": "help, not needed",
    "models": "registry listing, not needed",
    "history": "registry audit log, not needed",
    "register": "registry step: use `train.py --register NAME --alias ALIAS`",
    "promote": "registry step: promote after training in each environment",
    "alias": "registry step: use `train.py --register NAME --alias ALIAS`",
    "export": "the export itself",
}
_TIMEIT_OPTION = re.compile(r"^\s*-(?:[nrp]\s*\d+|[tcqo])\s*")


@dataclasses.dataclass
class Translation:
    """The plain-Python text of a cell and what was changed to get it."""

    code: str
    notes: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    #: True when the cell held IPython syntax only (nothing left but comments).
    magic_only: bool = False


@functools.lru_cache(maxsize=1)
def _transformer() -> Any:
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


def _comment(text: str, why: str) -> str:
    first, *rest = text.strip().splitlines() or [""]
    lines = [f"# nbmlops: {first}  ({why})"]
    lines += [f"#     {line}" for line in rest]
    return "\n".join(lines)


def _str_args(call: ast.Call) -> list[str] | None:
    values = []
    for arg in call.args:
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            return None
        values.append(arg.value)
    return values


def _ipython_call(node: ast.AST) -> tuple[str, list[str]] | None:
    """``('run_line_magic', ['time', 'f()'])`` for ``get_ipython().run_line_magic(...)``."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return None
    owner = node.func.value
    if not (
        isinstance(owner, ast.Call)
        and isinstance(owner.func, ast.Name)
        and owner.func.id == "get_ipython"
        and not owner.args
    ):
        return None
    args = _str_args(node)
    if args is None or node.keywords:
        return None
    return node.func.attr, args


def _parses(code: str, mode: str = "exec") -> bool:
    try:
        ast.parse(code, mode=mode)
    except SyntaxError:
        return False
    return True


def _value_expr(text: str) -> str:
    """A magic argument as a Python expression: ``{expr}`` -> ``expr``, else a string."""
    stripped = text.strip()
    if stripped.startswith("{") and stripped.endswith("}") and _parses(stripped[1:-1], "eval"):
        return stripped[1:-1].strip()
    return repr(stripped.strip("'\""))


def _number_expr(text: str) -> str | None:
    stripped = text.strip()
    if stripped.startswith("{") and stripped.endswith("}") and _parses(stripped[1:-1], "eval"):
        return f"float({stripped[1:-1].strip()})"
    try:
        return repr(float(stripped))
    except ValueError:
        return None


class _Result:
    """What one IPython call becomes: Python lines (may be empty) plus a leading comment."""

    def __init__(self, python: str = "", comment: str = "", imports: tuple[str, ...] = ()):
        self.python = python
        self.comment = comment
        self.imports = imports


class _Translator:
    def __init__(self) -> None:
        self.notes: list[str] = []
        self.warnings: list[str] = []

    # ----------------------------------------------------------------- line magics
    def line_magic(self, name: str, line: str, target: str | None) -> _Result:
        original = f"%{name} {line}".rstrip()
        shown = f"{target} = {original}" if target else original
        if name in _RUN_ARGUMENT:
            statement = line
            if name == "timeit":
                while _TIMEIT_OPTION.match(statement):
                    statement = _TIMEIT_OPTION.sub("", statement, count=1)
            statement = statement.strip()
            if target is not None:
                statement = f"{target} = {statement}"
            if statement and _parses(statement):
                self.notes.append(f"{shown}: {_RUN_ARGUMENT[name]}")
                return _Result(statement, _comment(shown, _RUN_ARGUMENT[name]))
            return self._drop(shown, f"%{name} argument is not Python", target, warn=True)
        if name in _INSTALLERS:
            return self._drop(shown, "install dependencies from requirements.txt instead", target)
        if name in ("env", "set_env"):
            return self._env(line, shown, target)
        if name == "mlops":
            return self._mlops(line, shown, target)
        if name == "cd":
            return self._drop(
                shown,
                "working-directory change not exported; paths are relative to where train.py runs",
                target,
                warn=True,
            )
        if name in ("run", "load", "loadpy", "store", "bookmark", "macro", "recall", "rerun"):
            return self._drop(shown, f"%{name} is not exported", target, warn=True)
        if name in ("sx", "system", "sc"):
            return self.shell(line, shown, target)
        if name in _SESSION_ONLY:
            return self._drop(shown, _SESSION_ONLY[name], target)
        return self._drop(shown, f"unknown magic %{name}, not exported", target, warn=True)

    def _drop(self, shown: str, why: str, target: str | None, warn: bool = False) -> _Result:
        (self.warnings if warn else self.notes).append(f"{shown}: {why}")
        if target is not None:
            self.warnings.append(
                f"{shown}: {target!r} is set to None in the exported code (the magic is not run)"
            )
            return _Result(f"{target} = None", _comment(shown, why))
        return _Result("", _comment(shown, why))

    def _env(self, line: str, shown: str, target: str | None) -> _Result:
        text = line.strip()
        match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=|\s)\s*(.*)", text)
        if target is not None and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
            self.notes.append(f"{shown}: reads os.environ")
            return _Result(
                f"{target} = os.environ.get({text!r})", _comment(shown, "os.environ"), ("os",)
            )
        if match and target is None and "$" not in match.group(2) and "{" not in match.group(2):
            key, value = match.group(1), match.group(2).strip()
            self.notes.append(f"{shown}: sets os.environ")
            return _Result(
                f"os.environ[{key!r}] = {value!r}", _comment(shown, "sets os.environ"), ("os",)
            )
        return self._drop(shown, "environment listing, not needed", target)

    def _mlops(self, line: str, shown: str, target: str | None) -> _Result:
        try:
            words = shlex.split(line)
        except ValueError:
            return self._drop(shown, "unparsable %mlops arguments", target, warn=True)
        command = words[0] if words else "help"
        if command in ("param", "tag", "metric") and target is None:
            step = None
            pairs = []
            rest = words[1:]
            while rest:
                word = rest.pop(0)
                if word == "--step" and rest:
                    step = rest.pop(0)
                    continue
                key, sep, value = word.partition("=")
                if not sep or not key:
                    return self._drop(shown, "unparsable %mlops arguments", None, warn=True)
                pairs.append((key, value))
            if command == "metric":
                items = []
                for key, value in pairs:
                    number = _number_expr(value)
                    if number is None:
                        return self._drop(shown, f"{key}={value!r} is not a number", None, True)
                    items.append(f"{key!r}: {number}")
                step_text = ""
                if step is not None:
                    if re.fullmatch(r"-?\d+", step.strip()):
                        step_text = f", step={int(step)}"
                    else:
                        step_expr = _number_expr(step)
                        step_text = f", step=int({step_expr})" if step_expr else ""
                code = f"nbmlops.log_metrics({{{', '.join(items)}}}{step_text})"
            else:
                function = "log_params" if command == "param" else "set_tags"
                items = [f"{key!r}: {_value_expr(value)}" for key, value in pairs]
                code = f"nbmlops.{function}({{{', '.join(items)}}})"
            self.notes.append(f"{shown}: translated to nbmlops.{code.split('(')[0][8:]}")
            return _Result(code, _comment(shown, "logged into the training run"), ("nbmlops",))
        why = _MLOPS_SESSION.get(command, f"%mlops {command} is not exported")
        return self._drop(shown, why, target)

    # ----------------------------------------------------------------- shell
    def shell(self, command: str, shown: str, target: str | None) -> _Result:
        words = command.split()
        if words and words[0] in _INSTALLERS:
            return self._drop(shown, "install dependencies from requirements.txt instead", target)
        if target is None:
            return self._drop(shown, "shell command not run", None)
        if "{" in command or "$" in command:
            return self._drop(shown, "shell command with notebook variables not run", target, True)
        self.notes.append(f"{shown}: runs the command with subprocess")
        code = (
            f"{target} = subprocess.run({command!r}, shell=True, capture_output=True, "
            "text=True, check=False).stdout.splitlines()"
        )
        return _Result(code, _comment(shown, "shell output via subprocess"), ("subprocess",))

    # ----------------------------------------------------------------- calls
    def call(self, method: str, args: list[str], target: str | None) -> _Result:
        if method == "run_line_magic" and len(args) == 2:
            return self.line_magic(args[0], args[1], target)
        if method in ("system", "getoutput") and len(args) == 1:
            return self.shell(args[0], f"!{args[0]}", target)
        return self._drop(f"get_ipython().{method}(...)", "IPython call not exported", target, True)


def translate_cell(source: str) -> Translation:
    """Translate one code cell's IPython syntax into plain Python (see the module docstring).

    Raises:
        SyntaxError: the cell is not valid Python even after translation.
    """
    translator = _Translator()
    code = _translate(source, translator)
    stripped = [line for line in code.splitlines() if line.strip()]
    has_ipython = bool(translator.notes or translator.warnings)
    magic_only = has_ipython and all(line.lstrip().startswith("#") for line in stripped)
    return Translation(code, translator.notes, translator.warnings, magic_only)


def _translate(source: str, translator: _Translator) -> str:
    transformed = _transformer().transform_cell(source)
    if "get_ipython" not in transformed:
        ast.parse(transformed)  # raises SyntaxError for a broken cell
        return source if source.endswith("\n") or not source else source + "\n"
    tree = ast.parse(transformed)
    if len(tree.body) == 1:
        cell = _cell_magic(tree.body[0], translator)
        if cell is not None:
            return cell
    lines = transformed.splitlines()
    edits: list[tuple[int, int, list[str]]] = []  # (first line, last line, replacement), 0-based
    imports: list[str] = []
    for node, depth in _statements(tree.body, 0):
        found = _statement_call(node)
        if found is None:
            continue
        (method, args), target = found
        result = translator.call(method, args, target)
        indent = " " * node.col_offset
        replacement = [indent + text for text in result.comment.splitlines()]
        if result.python:
            replacement += [indent + text for text in result.python.splitlines()]
        elif depth > 0:
            replacement.append(indent + "pass")
        for module in result.imports:
            if module not in imports:
                imports.append(module)
        edits.append((node.lineno - 1, (node.end_lineno or node.lineno) - 1, replacement))
    for first, last, replacement in sorted(edits, reverse=True):
        lines[first : last + 1] = replacement
    text = "\n".join(lines) + "\n"
    if imports:
        text = "".join(f"import {module}\n" for module in imports) + text
    tree = ast.parse(text)
    leftover = [
        node for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id == "get_ipython"
    ]
    if leftover:
        text = _comment_out_statements(text, tree, translator)
    return text


def _cell_magic(node: ast.stmt, translator: _Translator) -> str | None:
    if not isinstance(node, ast.Expr):
        return None
    found = _ipython_call(node.value)
    if found is None or found[0] != "run_cell_magic" or len(found[1]) != 3:
        return None
    name, line, body = found[1]
    header = f"%%{name} {line}".rstrip()
    if name in _KEEP_BODY and (name != "mlops" or line.split()[:1] == ["run"]):
        why = _KEEP_BODY[name]
        setup = ""
        if name == "timeit":
            while _TIMEIT_OPTION.match(line):
                line = _TIMEIT_OPTION.sub("", line, count=1)
            setup = line.strip()
        if name == "capture" and line.split():
            variable = [w for w in line.split() if not w.startswith("-")]
            if variable:
                translator.warnings.append(
                    f"{header}: the captured output {variable[0]!r} is not available in the "
                    "exported code"
                )
        translator.notes.append(f"{header}: {why}")
        inner = _translate(body, translator)
        prefix = _comment(header, why) + "\n"
        if setup and _parses(setup):
            prefix += setup + "\n"
        return prefix + inner
    if name == "writefile":
        words = line.split()
        append = "-a" in words or "--append" in words
        paths = [w for w in words if not w.startswith("-")]
        if len(paths) == 1 and "{" not in paths[0] and "$" not in paths[0]:
            translator.notes.append(f"{header}: writes the file with pathlib")
            mode = "a" if append else "w"
            return (
                f"{_comment(header, 'writes the file')}\nimport pathlib\n"
                f"with pathlib.Path({paths[0]!r}).open({mode!r}, encoding='utf-8') as _file:\n"
                f"    _file.write({body!r})\n"
            )
    why = (
        "not Python; not exported" if name in _FOREIGN_CELL else f"cell magic %%{name} not exported"
    )
    (translator.notes if name in _FOREIGN_CELL else translator.warnings).append(f"{header}: {why}")
    commented = [f"# nbmlops: {header}  ({why})"]
    commented += [f"#     {text}" for text in body.splitlines()]
    return "\n".join(commented) + "\n"


def _statements(body: list[ast.stmt], depth: int) -> Any:
    for node in body:
        yield node, depth
        for field in ("body", "orelse", "finalbody"):
            inner = getattr(node, field, None)
            if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                yield from _statements(inner, depth + 1)
        for handler in getattr(node, "handlers", []) or []:
            yield from _statements(handler.body, depth + 1)
        for case in getattr(node, "cases", []) or []:
            yield from _statements(case.body, depth + 1)


def _statement_call(node: ast.stmt) -> tuple[tuple[str, list[str]], str | None] | None:
    if isinstance(node, ast.Expr):
        found = _ipython_call(node.value)
        return (found, None) if found else None
    if (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name)
    ):
        found = _ipython_call(node.value)
        return (found, node.targets[0].id) if found else None
    return None


def _comment_out_statements(text: str, tree: ast.Module, translator: _Translator) -> str:
    """Comment out every statement that still uses ``get_ipython()`` (a last resort).

    A compound statement is commented out whole when its header (condition, iterable,
    context manager) uses it; otherwise only the inner statements that do.
    """
    lines = text.splitlines()
    edits: list[tuple[int, int, list[str]]] = []

    def uses_ipython(nodes: list[Any]) -> bool:
        return any(
            isinstance(n, ast.Name) and n.id == "get_ipython"
            for node in nodes
            if isinstance(node, ast.AST)
            for n in ast.walk(node)
        )

    def visit(body: list[ast.stmt], depth: int) -> None:
        for node in body:
            blocks = [
                getattr(node, field)
                for field in ("body", "orelse", "finalbody")
                if isinstance(getattr(node, field, None), list)
            ]
            blocks += [h.body for h in getattr(node, "handlers", []) or []]
            blocks += [c.body for c in getattr(node, "cases", []) or []]
            if blocks and not isinstance(node, ast.ClassDef):
                header = [
                    value
                    for field, value in ast.iter_fields(node)
                    if field not in ("body", "orelse", "finalbody", "handlers", "cases")
                ]
                flat = [v for h in header for v in (h if isinstance(h, list) else [h])]
                if not uses_ipython(flat):
                    for block in blocks:
                        visit(block, depth + 1)
                    continue
            elif blocks:
                for block in blocks:
                    visit(block, depth + 1)
                continue
            if not uses_ipython([node]):
                continue
            first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
            indent = " " * node.col_offset
            original = "\n".join(lines[first : last + 1]).strip()
            translator.warnings.append(
                f"{original.splitlines()[0].rstrip(':')}: uses get_ipython(), not exported"
            )
            replacement = [indent + c for c in _comment(original, "uses IPython").splitlines()]
            if depth > 0:
                replacement.append(indent + "pass")
            edits.append((first, last, replacement))

    visit(tree.body, 0)
    for first, last, replacement in sorted(edits, reverse=True):
        lines[first : last + 1] = replacement
    return "\n".join(lines) + "\n"
