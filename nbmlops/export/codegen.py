"""Writing the package: params.py, features.py, train.py, infer.py, tests, README, requirements.

Everything is generated as text in memory (:func:`generate` returns ``{relative path:
content}``); :func:`nbmlops.export.export_notebook` writes it only once it all compiled.
User code is carried over as written — comments and formatting kept — with small text
insertions where the export needs them: keyword-only parameters for the notebook variables
a function reads, those variables passed at its call sites (``functools.partial`` where the
function is passed as a value), and evaluation metrics recorded under the names notebook
autologging gives them.
"""

from __future__ import annotations

import ast
import importlib.metadata
import io
import json
import sys
import textwrap
import tokenize
from collections.abc import Iterable, Sequence

from nbmlops._version import __version__
from nbmlops.export.analysis import Analysis, FunctionInfo, MetricSite, Statement
from nbmlops.export.names import BUILTINS

__all__ = ["Names", "generate", "requirements"]

INDENT = "    "
SMOKE_TRAIN_ROWS = 200
SAMPLE_ROWS = 200


# --------------------------------------------------------------------------- naming


class Names:
    """Identifiers the generated code introduces, chosen not to clash with the notebook's."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = set(taken)

        def pick(*candidates: str) -> str:
            for candidate in candidates:
                if candidate not in self.taken:
                    self.taken.add(candidate)
                    return candidate
            base = candidates[0]
            n = 2
            while f"{base}_{n}" in self.taken:
                n += 1
            self.taken.add(f"{base}_{n}")
            return f"{base}_{n}"

        self.params_class = pick("Params", "ExportParams")
        self.params = pick("params", "run_params", "export_params")
        self.data = pick("data", "datasets", "export_data")
        self.metrics = pick("metrics", "run_metrics", "export_metrics")
        self.record = pick("_metric", "_record_metric")
        self.load_data = pick("load_data", "load_dataset", "load_training_data")
        self.build_features = pick("build_features", "make_features", "add_features_exported")
        self.train = pick("train", "fit_model", "train_exported")
        self.evaluate = pick("evaluate", "evaluate_model", "evaluate_exported")
        self.run = pick("run", "run_training", "run_exported")
        self.main = pick("main", "main_exported")
        self.frame = pick("df", "frame", "batch_frame")


def _all_names(analysis: Analysis) -> set[str]:
    names: set[str] = set(analysis.import_names) | set(analysis.functions)
    names |= {p.name for p in analysis.params}
    for statement in analysis.statements:
        names |= set(statement.binds) | set(statement.changes) | set(statement.reads)
        for node in ast.walk(statement.node):
            if isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return names


# --------------------------------------------------------------------------- text edits


class _Editor:
    """Insertions into a statement's text at AST positions (UTF-8 byte columns)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))
        self.inserts: list[tuple[int, int, str]] = []

    def offset(self, lineno: int, col: int) -> int:
        line = self.lines[lineno - 1] if lineno - 1 < len(self.lines) else ""
        prefix = line.encode("utf-8")[:col].decode("utf-8", errors="ignore")
        return self.starts[lineno - 1] + len(prefix)

    def start(self, node: ast.AST) -> int:
        return self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]

    def end(self, node: ast.AST) -> int:
        return self.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]

    def insert(self, offset: int, text: str, order: int) -> None:
        self.inserts.append((offset, order, text))

    def apply(self) -> str:
        out = self.text
        for offset, _order, text in sorted(self.inserts, key=lambda t: (t[0], t[1]), reverse=True):
            out = out[:offset] + text + out[offset:]
        return out


def _without_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def _kwargs_text(names: Sequence[str]) -> str:
    return ", ".join(f"{n}={n}" for n in names)


def rewrite_statement(
    statement: Statement,
    functions: dict[str, FunctionInfo],
    record: tuple[str, str, dict[int, MetricSite]] | None = None,
    uses_partial: set[str] | None = None,
) -> str:
    """The statement's text with call sites, function references, def headers and (in
    evaluation) metric calls rewritten. ``record`` is ``(record function, metrics dict
    name, {id(call): metric site})``."""
    needing = {name: f.globals for name, f in functions.items() if f.globals and not f.is_class}
    node = statement.node
    if not needing and not record:
        return statement.text
    editor = _Editor(statement.text)
    if isinstance(node, ast.ClassDef):
        return statement.text  # methods cannot receive the notebook's variables
    called: set[int] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name):
            called.add(id(sub.func))
            names = needing.get(sub.func.id)
            if names:
                close = editor.end(sub) - 1
                if sub.args or sub.keywords:
                    last = max(editor.end(a) for a in [*sub.args, *sub.keywords])
                    between = _without_comments(editor.text[last:close])
                    prefix = "" if "," in between else ", "
                else:
                    prefix = ""
                size = editor.end(sub) - editor.start(sub)
                editor.insert(close, prefix + _kwargs_text(names), size)
    for sub in ast.walk(node):
        if (
            isinstance(sub, ast.Name)
            and isinstance(sub.ctx, ast.Load)
            and sub.id in needing
            and id(sub) not in called
        ):
            size = editor.end(sub) - editor.start(sub)
            editor.insert(editor.start(sub), "functools.partial(", -size)
            editor.insert(editor.end(sub), f", {_kwargs_text(needing[sub.id])})", size)
            if uses_partial is not None:
                uses_partial.add("functools")
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and needing.get(node.name):
        _add_parameters(editor, node, needing[node.name])
    if record is not None:
        function, metrics, sites = record
        quotes = _fstring_quotes(node, editor)
        for sub in ast.walk(node):
            site = sites.get(id(sub)) if isinstance(sub, ast.Call) else None
            if site is None:
                continue
            used = quotes.get(id(sub), set())
            quote = next((q for q in ('"', "'") if q not in used), None)
            if quote is None:
                continue  # inside f-strings using both quote characters: leave it
            if site.score_of is not None:
                key = f"f{quote}{{type({site.score_of}).__name__}}{site.key}{quote}"
            else:
                key = f"{quote}{site.key}{quote}"
            size = editor.end(sub) - editor.start(sub)
            editor.insert(editor.start(sub), f"{function}({metrics}, {key}, ", -size - 1)
            editor.insert(editor.end(sub), ")", size + 1)
    return editor.apply()


def _fstring_quotes(node: ast.AST, editor: _Editor) -> dict[int, set[str]]:
    """For each node inside f-strings: the quote characters of those f-strings (before
    Python 3.12 an f-string's expressions cannot reuse its quote character)."""
    found: dict[int, set[str]] = {}

    def visit(current: ast.AST, quotes: frozenset[str]) -> None:
        if isinstance(current, ast.JoinedStr):
            start = editor.start(current)
            text = editor.text[start : start + 4].lstrip("fFrRbBuU")
            if text[:1] in ("'", '"'):
                quotes = quotes | {text[0]}
        if quotes:
            found[id(current)] = set(quotes)
        for child in ast.iter_child_nodes(current):
            visit(child, quotes)

    visit(node, frozenset())
    return found


def _add_parameters(
    editor: _Editor, node: ast.FunctionDef | ast.AsyncFunctionDef, names: Sequence[str]
) -> None:
    """Add keyword-only parameters ``names`` to a def header (tokens, not re-printing)."""
    tokens = list(tokenize.generate_tokens(io.StringIO(editor.text).readline))
    args = node.args
    has_star = args.vararg is not None or bool(args.kwonlyargs)
    text = ", ".join(names)
    if not has_star:
        text = "*, " + text
    for i, tok in enumerate(tokens):
        if (
            tok.type == tokenize.NAME
            and tok.string == "def"
            and i + 2 < len(tokens)
            and tokens[i + 1].string == node.name
            and tokens[i + 2].string == "("
        ):
            depth = 0
            last_significant = tokens[i + 2]
            for j in range(i + 2, len(tokens)):
                current = tokens[j]
                if current.type == tokenize.OP and current.string in "([{":
                    depth += 1
                elif current.type == tokenize.OP and current.string in ")]}":
                    depth -= 1
                    if depth == 0:
                        close = _char_offset(editor, current.start)
                        if last_significant.string == "(":
                            editor.insert(close, text, 0)
                        elif last_significant.string == ",":
                            editor.insert(close, " " + text, 0)
                        else:
                            editor.insert(close, ", " + text, 0)
                        return
                elif (
                    depth == 1
                    and current.type == tokenize.OP
                    and current.string == "**"
                    and args.kwarg is not None
                ):
                    editor.insert(_char_offset(editor, current.start), text + ", ", 0)
                    return
                if current.type not in (
                    tokenize.NL,
                    tokenize.NEWLINE,
                    tokenize.COMMENT,
                    tokenize.INDENT,
                    tokenize.DEDENT,
                ):
                    last_significant = current
            return


def _char_offset(editor: _Editor, position: tuple[int, int]) -> int:
    row, col = position  # tokenize columns count characters
    return editor.starts[row - 1] + col


def indent(text: str, prefix: str = INDENT) -> str:
    """Indent code, leaving the inside of multi-line strings untouched."""
    protected: set[int] = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.start[0] != tok.end[0] and tok.type in (
                tokenize.STRING,
                getattr(tokenize, "FSTRING_MIDDLE", -1),
                getattr(tokenize, "FSTRING_END", -1),
            ):
                protected.update(range(tok.start[0] + 1, tok.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        pass
    out = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if number in protected or not line.strip():
            out.append(line)
        else:
            out.append(prefix + line)
    return "".join(out)


# --------------------------------------------------------------------------- imports


def _import_lines(analysis: Analysis, used: set[str]) -> list[str]:
    """The notebook's imports that bind a name the module uses (experimental enablers too)."""
    lines: list[str] = []
    for statement in analysis.imports:
        node = statement.node
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        assert isinstance(node, (ast.Import, ast.ImportFrom))
        keep = []
        for alias in node.names:
            bound = alias.asname or alias.name.split(".", 1)[0]
            module = node.module or "" if isinstance(node, ast.ImportFrom) else alias.name
            enabler = "experimental" in f"{module}.{alias.name}" or alias.name.startswith("enable_")
            if alias.name == "*" or bound in used or enabler:
                keep.append(alias)
        if not keep:
            continue
        copy: ast.Import | ast.ImportFrom
        if isinstance(node, ast.Import):
            copy = ast.Import(names=keep)
        else:
            copy = ast.ImportFrom(module=node.module, names=keep, level=node.level)
        line = ast.unparse(copy)
        if line not in lines:
            lines.append(line)
    return lines


def _used_names(code: str) -> set[str]:
    tree = ast.parse(code)
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def _bound_names(code: str) -> set[str]:
    tree = ast.parse(code)
    bound = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
    return bound


# --------------------------------------------------------------------------- stages


class _Stage:
    """One stage function's body: inputs it reads, its code, names it binds.

    A call of a notebook function that reads notebook variables passes them explicitly, so
    those variables are inputs of the stage too.
    """

    def __init__(self, statements: Sequence[Statement], functions: dict[str, FunctionInfo]) -> None:
        self.statements = list(statements)
        self.free: list[str] = []
        bound: set[str] = set()
        for statement in self.statements:
            reads = set(statement.reads | statement.changes)
            for name in statement.reads & set(functions):
                reads |= set(functions[name].globals)
            for name in sorted(reads):
                if name not in bound and name not in self.free and not name.startswith("file:"):
                    self.free.append(name)
            bound |= statement.binds | statement.changes
        self.bound = bound


def _docstring_cells(analysis: Analysis, statements: Iterable[Statement]) -> str:
    ordered = sorted(statements, key=lambda s: s.index)
    labels = list(dict.fromkeys(analysis.cells[s.cell].cell.label for s in ordered))
    return ", ".join(labels) if labels else "no cell"


class _Generator:
    def __init__(self, analysis: Analysis, package: str, model_name: str) -> None:
        self.analysis = analysis
        self.package = package
        self.model_name = model_name
        self.names = Names(_all_names(analysis))
        self.functions = analysis.functions
        self.function_names = {f.name for f in analysis.used_functions}
        self.params = {p.name for p in analysis.params}
        self.imports = set(analysis.import_names)
        self.notebook = analysis.source.path.name if analysis.source.path else "notebook"
        self.warnings: list[str] = []
        load = analysis.kept("load")
        feature_ids = set(analysis.features_statements)
        self.feature_statements = [s for s in load if s.index in feature_ids]
        functions = analysis.functions
        self.load = _Stage([s for s in load if s.index not in feature_ids], functions)
        self.train = _Stage(analysis.kept("train"), functions)
        self.evaluate = _Stage(analysis.kept("evaluate"), functions)
        self.runner_names = [n for n in (analysis.x_train, analysis.y_train, analysis.holdout) if n]
        self.load_outputs = self._outputs(
            self.load, [self.train, self.evaluate], extra=self.runner_names
        )
        if analysis.features_frame and analysis.features_frame not in self.load.bound:
            self.load.bound.add(analysis.features_frame)
        self.train_outputs = [analysis.model] + [
            n
            for n in self._outputs(self.train, [self.evaluate], extra=self.runner_names)
            if n != analysis.model
        ]

    def _outputs(self, stage: _Stage, later: Sequence[_Stage], extra: Sequence[str]) -> list[str]:
        wanted: list[str] = []
        for other in later:
            wanted += other.free
        wanted += list(extra)
        return [n for n in dict.fromkeys(wanted) if n in stage.bound]

    # ----------------------------------------------------------------- shared pieces
    def _body(
        self,
        statements: Sequence[Statement],
        record: tuple[str, str, dict[int, MetricSite]] | None = None,
        partial: set[str] | None = None,
    ) -> str:
        parts = []
        for statement in statements:
            text = rewrite_statement(statement, self.functions, record, partial)
            parts.append(self._safe(text, statement))
        return "".join(parts)

    def _safe(self, text: str, statement: Statement) -> str:
        """Statement text that compiles inside a function, or a comment explaining why not."""
        try:
            compile("def _check():\n" + indent(text) + "    pass\n", "<export>", "exec")
            return text
        except SyntaxError as exc:
            label = self.analysis.cells[statement.cell].cell.label
            self.warnings.append(
                f"{label}: `{statement.first_line}` cannot run inside a function "
                f"({exc.msg}); commented out"
            )
            return "".join(f"# nbmlops: {line}" for line in text.splitlines(keepends=True)) + "\n"

    # ----------------------------------------------------------------- params.py
    def params_module(self) -> str:
        specs = self.analysis.params
        cls = self.names.params_class
        where = (
            "the cell tagged `parameters`"
            if self.analysis.params_tagged
            else "the notebook's top-level literal assignments"
        )
        fields = []
        for spec in specs:
            annotation = {
                "int": "int",
                "float": "float",
                "bool": "bool",
                "str": "str",
                "list": "list[Any]",
                "dict": "dict[str, Any]",
                "json": "Any",
            }[spec.type]
            if spec.type in ("list", "dict"):
                default = f"dataclasses.field(default_factory=lambda: {spec.default!r})"
            else:
                default = repr(spec.default)
            fields.append(f"    {spec.name}: {annotation} = {default}  # from {spec.cell}")
        if not fields:
            fields.append("    pass  # the notebook has no parameters")
        types = ", ".join(f"{s.name!r}: {s.type!r}" for s in specs)
        return _PARAMS_TEMPLATE.format(
            notebook=self.notebook,
            where=where,
            cls=cls,
            fields="\n".join(fields),
            types=types,
            package=self.package,
            model_name=self.model_name,
            version=__version__,
        )

    # ----------------------------------------------------------------- features.py
    def features_module(self) -> str:
        analysis = self.analysis
        names = self.names
        definitions = []
        partial: set[str] = set()
        for info in analysis.used_functions:
            text = rewrite_statement(info.statement, self.functions, None, partial)
            definitions.append(text.rstrip("\n") + "\n")
        load_lines = [f"{n} = {names.params}.{n}" for n in self.load.free if n in self.params]
        load_code = self._load_body(partial)
        returns = ", ".join(f'"{n}": {n}' for n in self.load_outputs)
        load_doc = (
            f"Load the data and prepare the training and evaluation sets.\n\n"
            f"    Exported from {_docstring_cells(analysis, self.load.statements + self.feature_statements)} "
            f"of {self.notebook}.\n    Returns the variables the training and evaluation "
            "code reads, by name.\n    "
        )
        body = "".join(INDENT + line + "\n" for line in load_lines) + indent(load_code)
        if not body.strip():
            body = ""
        load_fn = (
            f"def {names.load_data}({names.params}: {names.params_class}) -> dict[str, Any]:\n"
            f'    """{load_doc}"""\n'
            f"{body}"
            f"    return {{{returns}}}\n"
        )
        features_fn = self._features_function(partial)
        body_text = "\n\n".join([*definitions, load_fn, features_fn])
        used = _used_names(body_text)
        import_lines = _import_lines(analysis, used)
        if "functools" in partial and "import functools" not in import_lines:
            import_lines.insert(0, "import functools")
        if (
            "display" in used
            and "display" not in self.imports
            and "display" not in self.function_names
        ):
            import_lines.append("from IPython.display import display")
        header = _FEATURES_HEADER.format(
            notebook=self.notebook, load=names.load_data, build=names.build_features
        )
        own = f"from .params import {names.params_class}"
        parts = [header, "from __future__ import annotations\n", "from typing import Any\n"]
        if import_lines:
            parts.append("\n".join(import_lines) + "\n")
        parts.append(own + "\n")
        return "\n".join(p.rstrip("\n") + "\n" for p in parts) + "\n\n" + body_text

    def _load_body(self, partial: set[str]) -> str:
        analysis = self.analysis
        if not self.feature_statements:
            return self._body(self.load.statements, None, partial)
        first = self.feature_statements[0].index
        frame = analysis.features_frame
        pieces = []
        inserted = False
        for statement in self.load.statements:
            if statement.index > first and not inserted:
                pieces.append(
                    f"{frame} = {self.names.build_features}({frame}, {self.names.params})\n"
                )
                inserted = True
            pieces.append(self._body([statement], None, partial))
        if not inserted:
            pieces.append(f"{frame} = {self.names.build_features}({frame}, {self.names.params})\n")
        return "".join(pieces)

    def _features_function(self, partial: set[str]) -> str:
        names = self.names
        frame = self.analysis.features_frame
        signature = (
            f"def {names.build_features}({names.frame}: Any, {names.params}: "
            f"{names.params_class} | None = None) -> Any:\n"
        )
        if not self.feature_statements or frame is None:
            doc = (
                '    """Row-wise feature code applied to raw input rows before the model.\n\n'
                "    The notebook derives no new columns row by row outside its model, so this "
                "returns\n    the rows unchanged; all fitted preprocessing lives inside the "
                "trained model\n    (no training-serving skew). Tag a cell `mlops:features` to "
                'put code here.\n    """\n'
            )
            return signature + doc + f"    del {names.params}\n    return {names.frame}\n"
        stage = _Stage(self.feature_statements, self.functions)
        used = [n for n in stage.free if n in self.params and n != frame]
        if used:
            lines = [
                f"{names.params} = {names.params} if {names.params} is not None else "
                f"{names.params_class}()"
            ]
            lines += [f"{n} = {names.params}.{n}" for n in used]
        else:
            lines = [f"del {names.params}  # the feature code reads no parameter"]
        lines.append(f"{frame} = {names.frame}.copy()")
        code = self._body(self.feature_statements, None, partial)
        labels = _docstring_cells(self.analysis, self.feature_statements)
        doc = (
            f'    """The row-wise feature columns of {labels}, for training and inference.\n\n'
            "    Adds columns computed from each row alone (no dataset-level statistics), so "
            'raw rows\n    at inference get exactly the training features.\n    """\n'
        )
        body = "".join(INDENT + line + "\n" for line in lines) + indent(code)
        return signature + doc + body + f"    return {frame}\n"

    # ----------------------------------------------------------------- train.py
    def train_module(self) -> str:
        analysis = self.analysis
        names = self.names
        model = analysis.model
        partial: set[str] = set()
        train_lines = self._lookup_lines(self.train, self.load_outputs)
        train_code = self._body(self.train.statements, None, partial)
        train_returns = ", ".join(f'"{n}": {n}' for n in self.train_outputs)
        train_doc = (
            f"Fit the model {model!r} ({_docstring_cells(analysis, self.train.statements)} of "
            f"{self.notebook}).\n\n    Returns the fitted model under {model!r} and the variables "
            "evaluation reads.\n    "
        )
        train_fn = (
            f"def {names.train}({names.data}: dict[str, Any], {names.params}: {names.params_class}) -> dict[str, Any]:\n"
            f'    """{train_doc}"""\n'
            + "".join(INDENT + line + "\n" for line in train_lines)
            + indent(train_code)
            + f"    return {{{train_returns}}}\n"
        )
        keys = {id(site.node): site for site in analysis.metric_sites}
        available = list(dict.fromkeys(self.load_outputs + self.train_outputs))
        evaluate_lines = self._lookup_lines(self.evaluate, available)
        evaluate_code = self._body(
            self.evaluate.statements, (names.record, names.metrics, keys), partial
        )
        evaluate_doc = (
            f"Evaluate the model as {_docstring_cells(analysis, self.evaluate.statements)} of "
            f"{self.notebook} did.\n\n    Returns the post-training metrics under the names "
            "notebook autologging gives\n    them (``<metric>_<data variable>``).\n    "
        )
        evaluate_fn = (
            f"def {names.evaluate}({names.data}: dict[str, Any], {names.params}: {names.params_class}) -> dict[str, float]:\n"
            f'    """{evaluate_doc}"""\n'
            f"    {names.metrics}: dict[str, float] = {{}}\n"
            + "".join(INDENT + line + "\n" for line in evaluate_lines)
            + indent(evaluate_code)
            + f"    return {names.metrics}\n"
        )
        record_fn = (
            f"def {names.record}({names.metrics}: dict[str, float], name: str, value: Any) -> Any:\n"
            '    """Record a post-training metric (when it is a number) and return the value."""\n'
            "    try:\n"
            f"        {names.metrics}[name] = float(value)\n"
            "    except (TypeError, ValueError):\n"
            "        pass\n"
            "    return value\n"
        )
        runner = self._runner()
        body_text = "\n\n".join([record_fn, train_fn, evaluate_fn, runner])
        used = _used_names(body_text)
        import_lines = _import_lines(analysis, used - {"nbmlops"})
        for module in ("argparse", "sys", "pathlib"):
            import_lines = [line for line in import_lines if line != f"import {module}"]
        if "functools" in partial and "import functools" not in import_lines:
            import_lines.insert(0, "import functools")
        if (
            "display" in used
            and "display" not in self.imports
            and "display" not in self.function_names
        ):
            import_lines.append("from IPython.display import display")
        from_features = sorted((used & self.function_names) | {names.load_data})
        header = _TRAIN_HEADER.format(
            notebook=self.notebook,
            package=self.package,
            model=model,
            name=self.model_name,
        )
        parts = [
            header,
            "from __future__ import annotations\n",
            "import argparse\nimport sys\nfrom pathlib import Path\nfrom typing import Any\n",
            "import nbmlops\nfrom nbmlops.export import runtime\n",
        ]
        if import_lines:
            parts.append("\n".join(import_lines) + "\n")
        parts.append(
            f"from .features import {', '.join(from_features)}\n"
            "from .params import (\n"
            "    EXPERIMENT,\n"
            "    PACKAGE,\n"
            f"    {names.params_class},\n"
            "    ParamError,\n"
            "    add_param_arguments,\n"
            "    params_from_args,\n"
            "    params_to_dict,\n"
            ")\n"
        )
        constants = (
            f"MODEL_VARIABLE = {_quoted(model)}\n"
            f"TRAIN_X = {_quoted(analysis.x_train)}\n"
            f"TRAIN_Y = {_quoted(analysis.y_train)}\n"
            f"HOLDOUT_X = {_quoted(analysis.holdout)}\n"
            f"SAMPLE_ROWS = {SAMPLE_ROWS}\n"
        )
        parts.append(constants)
        return (
            "\n".join(p.rstrip("\n") + "\n" for p in parts)
            + "\n\n"
            + body_text
            + _TRAIN_MAIN_TAIL.format(main=names.main)
        )

    def _lookup_lines(self, stage: _Stage, available: Sequence[str]) -> list[str]:
        """``name = data["name"]`` / ``name = params.name`` lines for a stage's inputs."""
        lines = []
        skip = (self.imports | self.function_names | BUILTINS) - self.params
        for name in stage.free:
            if name in skip:
                continue
            if name in available:
                lines.append(f'{name} = {self.names.data}["{name}"]')
            elif name in self.params:
                lines.append(f"{name} = {self.names.params}.{name}")
        return lines

    def _runner(self) -> str:
        names = self.names
        a = self.analysis
        subsample = ""
        if (
            a.x_train
            and a.y_train
            and a.x_train in self.load_outputs
            and a.y_train in self.load_outputs
        ):
            subsample = (
                "        if max_train_rows:\n"
                f"            {names.data}[TRAIN_X], {names.data}[TRAIN_Y] = runtime.subsample(\n"
                f"                {names.data}[TRAIN_X], {names.data}[TRAIN_Y], max_train_rows\n"
                "            )\n"
            )
        else:
            subsample = (
                "        if max_train_rows:\n"
                '            print(f"{PACKAGE}.train: --max-train-rows ignored (the fit\'s data are not "\n'
                "                  'plain variables)', file=sys.stderr)\n"
            )
        training = ""
        if a.x_train and a.y_train:
            training = f"        {names.metrics} = runtime.training_metrics(model, {names.data}[TRAIN_X], {names.data}[TRAIN_Y])\n"
        else:
            training = f"        {names.metrics} = {{}}\n"
        datasets = ""
        if a.x_train:
            datasets += f'        nbmlops.log_input({names.data}[TRAIN_X], name=TRAIN_X, context="training")\n'
        if a.y_train:
            datasets += f'        nbmlops.log_input({names.data}[TRAIN_Y], name=TRAIN_Y, context="training")\n'
        example = f"runtime.head({names.data}[TRAIN_X], 5)" if a.x_train else "None"
        sample = f"{names.data}.get(HOLDOUT_X)" if a.holdout else "None"
        return _RUNNER_TEMPLATE.format(
            run=names.run,
            params=names.params,
            cls=names.params_class,
            data=names.data,
            metrics=names.metrics,
            load=names.load_data,
            train=names.train,
            evaluate=names.evaluate,
            subsample=subsample,
            training=training,
            datasets=datasets,
            example=example,
            sample=sample,
            main=names.main,
        )

    # ----------------------------------------------------------------- infer.py, tests
    def infer_module(self) -> str:
        return _INFER_TEMPLATE.format(
            notebook=self.notebook, package=self.package, build=self.names.build_features
        )

    def test_module(self) -> str:
        return _TEST_TEMPLATE.format(package=self.package, rows=SMOKE_TRAIN_ROWS)


def _quoted(name: str | None) -> str:
    return "None" if name is None else f'"{name}"'


# --------------------------------------------------------------------------- requirements


def _distributions() -> dict[str, list[str]]:
    cached = getattr(_distributions, "_cache", None)
    if cached is None:
        cached = dict(importlib.metadata.packages_distributions())
        _distributions._cache = cached  # type: ignore[attr-defined]
    return cached


def requirements(modules: Iterable[str], package: str) -> tuple[list[str], list[str]]:
    """Pinned requirement lines for top-level ``modules`` and warnings for unknown ones."""
    stdlib = set(getattr(sys, "stdlib_module_names", ()))
    lines: dict[str, str] = {}
    warnings: list[str] = []
    distributions = _distributions()
    for module in sorted(set(modules)):
        if not module or module in stdlib or module == package or module == "__future__":
            continue
        found = distributions.get(module)
        if not found:
            try:
                importlib.metadata.version(module)
                found = [module]
            except importlib.metadata.PackageNotFoundError:
                found = None
        if not found:
            warnings.append(
                f"module {module!r} is not installed here; requirements.txt cannot pin it"
            )
            lines[module] = (
                f"# {module}: not installed in the exporting environment (pin it yourself)"
            )
            continue
        for distribution in found[:1]:
            try:
                version = importlib.metadata.version(distribution)
            except importlib.metadata.PackageNotFoundError:
                continue
            lines[distribution.lower()] = f"{distribution}=={version}"
    return list(lines.values()), warnings


def _top_modules(code: str) -> set[str]:
    tree = ast.parse(code)
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {a.name.split(".", 1)[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".", 1)[0])
    return modules


def generate(analysis: Analysis, package: str, model_name: str) -> tuple[dict[str, str], list[str]]:
    """All files of the exported project: ``{relative path: text}`` and codegen warnings."""
    generator = _Generator(analysis, package, model_name)
    files = {
        f"{package}/__init__.py": _INIT_TEMPLATE.format(
            notebook=generator.notebook, package=package, version=__version__
        ),
        f"{package}/params.py": generator.params_module(),
        f"{package}/features.py": generator.features_module(),
        f"{package}/train.py": generator.train_module(),
        f"{package}/infer.py": generator.infer_module(),
        f"{package}/__main__.py": _MAIN_TEMPLATE.format(package=package),
        f"{package}/tests/__init__.py": "",
        f"{package}/tests/test_pipeline.py": generator.test_module(),
    }
    modules: set[str] = {"nbmlops", "pandas", "numpy"}
    for path, text in files.items():
        if path.endswith(".py") and "/tests/" not in path:
            modules |= _top_modules(text)
    modules -= {"yaml", "pytest", "pyarrow"}  # optional, listed below
    sklearn_used = "sklearn" in modules
    if sklearn_used:
        modules |= {"joblib"}
    pinned, warnings = requirements(modules, package)
    optional = []
    for module, why in (
        ("pyarrow", "Parquet input/output"),
        ("yaml", "--params-file FILE.yaml"),
        ("pytest", "the smoke test"),
    ):
        found, _ = requirements([module], package)
        if found and not found[0].startswith("#"):
            optional.append(f"# {found[0]}  # optional: {why}")
    files["requirements.txt"] = (
        _REQUIREMENTS_HEADER.format(notebook=generator.notebook)
        + "\n".join(pinned + optional)
        + "\n"
    )
    files["README.md"] = _readme(analysis, package, model_name, generator)
    return files, generator.warnings + warnings


def _readme(analysis: Analysis, package: str, model_name: str, generator: _Generator) -> str:
    params = analysis.params
    if params:
        rows = "\n".join(
            f"| `{p.name}` | {p.type} | `{json.dumps(p.default)}` | {p.cell} |" for p in params
        )
        table = "| parameter | type | default | from |\n|---|---|---|---|\n" + rows
    else:
        table = "The notebook has no parameters."
    example_param = (
        f"--param {params[0].name}={json.dumps(params[0].default) if params[0].type != 'str' else params[0].default}"
        if params
        else ""
    )
    return _README_TEMPLATE.format(
        notebook=generator.notebook,
        package=package,
        model_name=model_name,
        model=analysis.model,
        table=table,
        example_param=example_param,
        version=__version__,
    ).lstrip()


# --------------------------------------------------------------------------- templates

_INIT_TEMPLATE = '''"""{package}: exported from {notebook} by nbmlops {version}.

Modules: ``params`` (typed parameters), ``features`` (data loading and features), ``train``
(``python -m {package}.train``) and ``infer`` (``python -m {package}.infer``).
"""
'''

_MAIN_TEMPLATE = '''"""``python -m {package}`` says how to run the package."""

print(
    "usage: python -m {package}.train [--param KEY=VALUE ...] [--register NAME]\\n"
    "       python -m {package}.infer --input BATCH.csv --output PREDICTIONS.csv"
)
'''

_PARAMS_TEMPLATE = '''"""Parameters of {notebook}, from {where}.

Typed: each parameter keeps the type of its literal in the notebook. ``--param KEY=VALUE``
(repeatable) and ``--params-file FILE.json|yaml`` override the defaults; an unknown key or a
value of the wrong type is an error naming the parameter (:class:`ParamError`).
Exported by nbmlops {version}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

PACKAGE = {package!r}
#: The registered model this package trains and serves (``models:/<MODEL_NAME>@champion``).
MODEL_NAME = {model_name!r}
EXPERIMENT = PACKAGE
TYPES: dict[str, str] = {{{types}}}


class ParamError(ValueError):
    """An unknown parameter or a value of the wrong type."""


@dataclasses.dataclass(frozen=True)
class {cls}:
    """The notebook's parameters with its values as defaults."""

{fields}


def params_to_dict(params: {cls}) -> dict[str, Any]:
    """The parameters as a plain dict (for logging)."""
    return dataclasses.asdict(params)


def _check(name: str, value: Any) -> Any:
    """``value`` as parameter ``name``'s type (int -> float allowed), else ParamError."""
    if name not in TYPES:
        known = ", ".join(sorted(TYPES)) or "none"
        raise ParamError(f"unknown parameter {{name!r}} (parameters: {{known}})")
    kind = TYPES[name]
    ok = {{
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "bool": isinstance(value, bool),
        "str": isinstance(value, str),
        "list": isinstance(value, list),
        "dict": isinstance(value, dict),
        "json": True,
    }}[kind]
    if not ok:
        raise ParamError(
            f"parameter {{name!r}} expects {{kind}}, got {{type(value).__name__}} {{value!r}}"
        )
    return float(value) if kind == "float" else value


def _parse_text(name: str, text: str) -> Any:
    """A command-line value as parameter ``name``'s type."""
    if name not in TYPES:
        _check(name, None)
    kind = TYPES[name]
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            lowered = text.strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError(text)
        if kind == "str":
            return text
        return json.loads(text)
    except ValueError:
        raise ParamError(f"parameter {{name!r}} expects {{kind}}, got {{text!r}}") from None


def read_params_file(path: str | Path) -> dict[str, Any]:
    """Parameter values from a JSON or YAML file (a mapping of name to value)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParamError(f"cannot read params file {{path}}: {{exc.strerror or exc}}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ParamError(f"{{path}}: reading YAML needs PyYAML (pip install pyyaml)") from None
        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ParamError(f"{{path}}: invalid YAML ({{exc}})") from None
    elif path.suffix.lower() == ".json":
        try:
            values = json.loads(text)
        except ValueError as exc:
            raise ParamError(f"{{path}}: invalid JSON ({{exc}})") from None
    else:
        raise ParamError(f"{{path}}: params files must be .json, .yaml or .yml")
    if values is None:
        return {{}}
    if not isinstance(values, dict):
        raise ParamError(f"{{path}}: expected a mapping of parameter names to values")
    return values


def make_params(
    overrides: dict[str, Any] | None = None, texts: list[str] | None = None
) -> {cls}:
    """Defaults, then ``overrides`` (typed values), then ``texts`` (``KEY=VALUE`` strings)."""
    values: dict[str, Any] = {{}}
    for name, value in (overrides or {{}}).items():
        values[name] = _check(str(name), value)
    for text in texts or []:
        name, sep, raw = text.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ParamError(f"--param expects KEY=VALUE, got {{text!r}}")
        values[name] = _check(name, _parse_text(name, raw))
    return {cls}(**values)


def add_param_arguments(parser: argparse.ArgumentParser) -> None:
    """``--param KEY=VALUE`` (repeatable) and ``--params-file FILE``."""
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a parameter ({{', '.join(sorted(TYPES)) or 'none'}})",
    )
    parser.add_argument(
        "--params-file", metavar="FILE", help="parameter values from a .json or .yaml file"
    )


def params_from_args(args: argparse.Namespace) -> {cls}:
    """The parameters named by parsed ``--params-file`` and ``--param`` options."""
    overrides = read_params_file(args.params_file) if args.params_file else {{}}
    return make_params(overrides, args.param)
'''

_FEATURES_HEADER = '''"""Data loading and features, exported from {notebook}.

``{load}(params)`` runs the notebook's data and feature code and returns the variables
training and evaluation read. ``{build}(df)`` holds the row-wise feature code that must
run identically at training and at inference; fitted preprocessing stays inside the trained
model, so serving uses exactly the training transformations. Functions and classes defined
in the notebook are here too; those that read notebook variables take them as keyword-only
parameters.
"""
'''

_TRAIN_HEADER = '''"""Train the model of {notebook}: load -> features -> fit -> evaluate -> log.

    python -m {package}.train [--param KEY=VALUE ...] [--params-file FILE]
        [--tracking-uri URI] [--register NAME [--alias challenger]]

Logs one run to the nbmlops store named by ``--tracking-uri`` or ``NBMLOPS_TRACKING_URI``:
the parameters, training and evaluation metrics (named as notebook autologging names them),
fingerprints of the training data, and the model ``{model}`` (with its signature). With
``--register`` the model becomes the next version of a registered model (``{name}`` by
default for ``infer.py``) and ``--alias`` points an alias at it.
"""
'''

_RUNNER_TEMPLATE = '''def {run}(
    {params}: {cls},
    *,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    register: str | None = None,
    alias: str | None = None,
    max_train_rows: int | None = None,
    sample_out: str | Path | None = None,
) -> str:
    """Load, fit, evaluate and log one training run; returns its run id.

    Args:
        {params}: the parameters (defaults: the notebook's values).
        tracking_uri: the nbmlops store (default: ``NBMLOPS_TRACKING_URI`` or the nearest
            ``.nbmlops/`` folder).
        experiment: experiment of the run (default: the package name).
        register: register the model as the next version of this name.
        alias: point this alias (e.g. ``challenger``) at the new version.
        max_train_rows: fit on a random sample of this many training rows (smoke tests).
        sample_out: write the first rows of the held-out data here (.csv or .parquet).
    """
    if tracking_uri:
        nbmlops.set_tracking_uri(tracking_uri)
    nbmlops.set_experiment(experiment or EXPERIMENT)
    tags = {{"nbmlops.run_type": "export-train", "nbmlops.export.package": PACKAGE}}
    with nbmlops.start_run(run_name=f"{{PACKAGE}} train", tags=tags) as active:
        nbmlops.log_params(params_to_dict({params}))
        {data} = {load}({params})
{subsample}        {data}.update({train}({data}, {params}))
        model = {data}[MODEL_VARIABLE]
{training}        {metrics}.update({evaluate}({data}, {params}))
        nbmlops.log_metrics({metrics})
{datasets}        info = nbmlops.log_model(model, name="model", input_example={example})
        if register:
            version = nbmlops.register_model(info.model_uri, register)
            if alias:
                nbmlops.get_client().set_registered_model_alias(register, alias, version.version)
        sample = {sample}
        if sample_out is not None and sample is not None:
            runtime.write_table(runtime.head(sample, SAMPLE_ROWS), sample_out)
        run_id = active.info.run_id
    summary = ", ".join(f"{{k}}={{v:.6g}}" for k, v in sorted({metrics}.items()))
    print(f"run {{run_id}}: {{summary or 'no metrics'}}")
    return run_id


def {main}(argv: list[str] | None = None) -> int:
    """Command line: train once and log the run (exit status 2 on bad arguments)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {{PACKAGE}}.train", description=__doc__.split("\\n", 1)[0]
    )
    add_param_arguments(parser)
    parser.add_argument("--tracking-uri", metavar="URI", help="nbmlops store to log to")
    parser.add_argument("--experiment", metavar="NAME", help="experiment of the run")
    parser.add_argument("--register", metavar="NAME", help="register the model under NAME")
    parser.add_argument("--alias", metavar="ALIAS", help="alias for the new version")
    parser.add_argument(
        "--max-train-rows", type=int, metavar="N", help="fit on N sampled rows (smoke tests)"
    )
    parser.add_argument(
        "--sample-out", metavar="FILE", help="write held-out rows here (.csv/.parquet)"
    )
    args = parser.parse_args(argv)
    if args.alias and not args.register:
        parser.error("--alias needs --register NAME")
    try:
        {params} = params_from_args(args)
    except ParamError as exc:
        print(f"{{parser.prog}}: error: {{exc}}", file=sys.stderr)
        return 2
    try:
        {run}(
            {params},
            tracking_uri=args.tracking_uri,
            experiment=args.experiment,
            register=args.register,
            alias=args.alias,
            max_train_rows=args.max_train_rows,
            sample_out=args.sample_out,
        )
    except nbmlops.NbMlopsError as exc:
        print(f"{{parser.prog}}: error: {{exc}}", file=sys.stderr)
        return 2
    return 0
'''

_TRAIN_MAIN_TAIL = """

if __name__ == "__main__":
    sys.exit({main}())
"""

_INFER_TEMPLATE = '''"""Batch inference for the model trained by this package (no training code runs here).

    python -m {package}.infer --input BATCH.csv|.parquet --output PREDICTIONS.csv|.parquet
        [--model-uri models:/<name>@champion] [--tracking-uri URI]

Loads the model by URI (its file's sha256 is checked before unpickling), reads the batch,
checks it against the model's signature (missing columns or uncastable dtypes are errors
naming the column), applies the row-wise feature code when the batch has raw rows, and
writes ``prediction`` (plus ``proba_<class>`` columns when the model has
``predict_proba``). Logs an inference run with the batch's fingerprint and the predictions'
sha256 unless ``--no-log``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import nbmlops
from nbmlops.export import runtime

from .features import {build}
from .params import MODEL_NAME, PACKAGE

DEFAULT_MODEL_URI = f"models:/{{MODEL_NAME}}@champion"


def signature_columns(model: Any) -> list[str] | None:
    """The input column names of a DataFrame signature, or None."""
    signature = model.signature or {{}}
    inputs = signature.get("inputs") or {{}}
    if inputs.get("type") != "dataframe":
        return None
    return [str(column["name"]) for column in inputs.get("columns", [])]


def prepare_batch(batch: Any, model: Any) -> Any:
    """Raw rows get the row-wise feature code; rows that already have the model's input
    columns are used as they are."""
    columns = signature_columns(model)
    if columns is None or all(c in batch.columns for c in columns):
        return batch
    try:
        return {build}(batch)
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        missing = ", ".join(repr(c) for c in columns if c not in batch.columns)
        raise nbmlops.InvalidArgument(
            f"the batch lacks the model's input column(s) {{missing}} and the row-wise "
            f"feature code cannot derive them ({{type(exc).__name__}}: {{exc}})"
        ) from None


def predict_frame(model: Any, batch: Any) -> Any:
    """Predictions (and class probabilities when available) as a DataFrame."""
    import pandas as pd

    prepared = prepare_batch(batch, model)
    predictions = model.predict(prepared)
    out = pd.DataFrame({{"prediction": predictions}}, index=batch.index)
    if hasattr(model, "predict_proba"):
        probabilities = model.predict_proba(prepared)
        classes = getattr(model.raw_model, "classes_", range(probabilities.shape[1]))
        for position, label in enumerate(classes):
            out[f"proba_{{label}}"] = probabilities[:, position]
    return out


def predict_file(
    input_path: str | Path,
    output_path: str | Path,
    *,
    model_uri: str = DEFAULT_MODEL_URI,
    tracking_uri: str | None = None,
    log: bool = True,
    experiment: str | None = None,
) -> tuple[Any, str]:
    """Score ``input_path`` into ``output_path``; returns (predictions frame, sha256)."""
    if tracking_uri:
        nbmlops.set_tracking_uri(tracking_uri)
    model = nbmlops.load_model(model_uri)
    batch = runtime.read_table(input_path)
    out = predict_frame(model, batch)
    runtime.write_table(out, output_path)
    digest = runtime.prediction_digest(out["prediction"].to_numpy())
    if log:
        nbmlops.set_experiment(experiment or f"{{PACKAGE}}-inference")
        tags = {{
            "nbmlops.run_type": "inference",
            "nbmlops.export.package": PACKAGE,
            "nbmlops.model_uri": model_uri,
            "nbmlops.predictions_sha256": digest,
        }}
        with nbmlops.start_run(run_name=f"{{PACKAGE}} infer", tags=tags):
            nbmlops.log_param("model_uri", model_uri)
            nbmlops.log_param("model_run_id", model.run_id)
            nbmlops.log_input(batch, name=Path(input_path).name, context="inference")
            nbmlops.log_metric("rows", len(out))
    return out, digest


def main(argv: list[str] | None = None) -> int:
    """Command line (exit status 2 on a bad batch, model URI or arguments)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {{PACKAGE}}.infer", description=__doc__.split("\\n", 1)[0]
    )
    parser.add_argument("--input", required=True, metavar="FILE", help="batch (.csv/.parquet)")
    parser.add_argument("--output", required=True, metavar="FILE", help="predictions file")
    parser.add_argument("--model-uri", default=DEFAULT_MODEL_URI, metavar="URI")
    parser.add_argument("--tracking-uri", metavar="URI", help="nbmlops store")
    parser.add_argument("--experiment", metavar="NAME", help="experiment of the inference run")
    parser.add_argument("--no-log", action="store_true", help="do not log an inference run")
    args = parser.parse_args(argv)
    try:
        out, digest = predict_file(
            args.input,
            args.output,
            model_uri=args.model_uri,
            tracking_uri=args.tracking_uri,
            log=not args.no_log,
            experiment=args.experiment,
        )
    except nbmlops.NbMlopsError as exc:
        print(f"{{parser.prog}}: error: {{exc}}", file=sys.stderr)
        return 2
    print(f"wrote {{len(out)}} predictions to {{args.output}} (sha256 {{digest}})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''

_TEST_TEMPLATE = '''"""Smoke test of the exported package: train on a small sample, load the model, infer."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import nbmlops
from {package} import infer, train
from {package}.params import MODEL_NAME


def test_train_load_infer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"sqlite:///{{tmp_path / 'store' / 'nbmlops.db'}}"
    monkeypatch.setenv("NBMLOPS_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    sample = tmp_path / "sample.csv"
    code = train.main(
        ["--tracking-uri", uri, "--max-train-rows", "{rows}", "--sample-out", str(sample),
         "--register", MODEL_NAME, "--alias", "champion"]
    )
    assert code == 0
    model = nbmlops.load_model(f"models:/{{MODEL_NAME}}@champion")
    assert hasattr(model, "predict")
    output = tmp_path / "predictions.csv"
    assert infer.main(["--input", str(sample), "--output", str(output), "--tracking-uri", uri]) == 0
    predictions = pd.read_csv(output)
    assert len(predictions) == len(pd.read_csv(sample)) > 0
    assert "prediction" in predictions.columns


def test_unknown_parameter_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert train.main(["--param", "no_such_parameter=1"]) == 2
    assert "unknown parameter 'no_such_parameter'" in capsys.readouterr().err
'''

_REQUIREMENTS_HEADER = """# Pinned to the versions in the environment {notebook} was exported from.
# nbmlops is the deploy dependency: train.py logs runs and models to its store, infer.py
# loads models with it (sha256-checked).
"""

_README_TEMPLATE = textwrap.dedent(
    """
    # {package}

    Exported from `{notebook}` by nbmlops {version}. This package **retrains** the notebook's
    model `{model}` from code, on each environment's own data, instead of copying a pickle
    from development to production.

    ```
    {package}/params.py      typed parameters (defaults = the notebook's values)
    {package}/features.py    data loading and feature code, the notebook's functions/classes
    {package}/train.py       load -> features -> fit -> evaluate -> log a run (and register)
    {package}/infer.py       load a model by URI, check the batch, write predictions
    {package}/tests/         a smoke test (train on a sample, load, infer)
    requirements.txt         pinned versions of what the code imports (nbmlops included)
    export-report.json       how each cell was exported, and the verification result
    ```

    ## Run it in each environment

    ```bash
    pip install -r requirements.txt
    export NBMLOPS_TRACKING_URI=sqlite:////path/to/this-environment/nbmlops.db
    python -m {package}.train {example_param} --register {model_name} --alias challenger
    nbmlops runs                                  # see the training run and its metrics
    python -m {package}.infer --input batch.csv --output predictions.csv \\
        --model-uri models:/{model_name}@champion
    python -m pytest {package}/tests -q           # the smoke test
    ```

    Run the commands from this folder (the one holding `{package}/`). Promote the new
    version in each environment after checking its metrics, e.g.
    `nbmlops.promote("{model_name}", <version>, metric=...)`.

    ## Parameters

    {table}

    `--param KEY=VALUE` (repeatable) and `--params-file params.yaml|json` override them; an
    unknown key or a value of the wrong type stops with an error naming the parameter.

    ## Verification

    `nbmlops export NOTEBOOK --verify` ran `train.py` in a fresh interpreter and compared its
    metrics with the notebook's autologged run, plus a prediction hash on held-out rows
    through `infer.py`; the result is in `export-report.json` and on the notebook's run
    (tag `nbmlops.export.verified`).
    """
)
