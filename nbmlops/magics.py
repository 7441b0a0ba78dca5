"""``%mlops`` / ``%%mlops``: argument parsing and display only; every action is one call into
:mod:`nbmlops.autolog` (its Python twin). Bad arguments and refused actions end in a one-line
``UsageError``, never in a traceback from these internals.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class

from nbmlops.errors import NbMlopsError

MANUAL = """nbmlops notebook magics.

  %mlops autolog on|off [--experiment NAME] [--no-models] [--no-figures]
      Turn cell autologging on/off. On opens the session run (named after the notebook);
      every cell that fits a scikit-learn model, calls a sklearn.metrics scorer on a model's
      output, logs explicitly, or draws a figure while a %mlops start run is open becomes a
      child run. Off ends the session run FINISHED.        e.g.  %mlops autolog on
  %mlops start NAME [--tags k=v ...]
      Open a parent run spanning the following cells.     e.g.  %mlops start feature-sweep
  %mlops end [--status FINISHED|FAILED|KILLED]
      End the innermost parent run.                        e.g.  %mlops end --status FAILED
  %%mlops run [--name NAME] [--tags k=v ...]
      Make this cell a run (nested under the open parent or the session run).
                                                           e.g.  %%mlops run --name baseline
  %mlops param k=v ...      log params into this cell's run    e.g.  %mlops param model=rf depth=5
  %mlops metric k=v ... [--step N]   log metrics              e.g.  %mlops metric f1=0.82 --step 3
  %mlops tag k=v ...        set tags on this cell's run        e.g.  %mlops tag stage=dev
  %mlops status             store location, experiment, session run, open runs, autolog state
  %mlops runs [--last N] [--filter F] [--experiment E] [--all]
      The runs of this notebook's experiment as a tree.   e.g.  %mlops runs --filter "metrics.f1 > 0.8"
  %mlops register RUN_ID|last NAME [--alias ALIAS] [--path PATH]
      Register the model logged in a run (`last`: the newest run of this notebook's
      experiment with a logged model) as the next version of NAME.
                                                  e.g.  %mlops register last churn --alias challenger
  %mlops promote NAME VERSION [--metric M] [--min-delta D] [--lower-is-better] [--alias A] [--force]
      Champion-challenger: VERSION takes @champion (or --alias) only if its source run's
      metric (default f1) beats the champion's by more than D, or if there is no champion
      yet, or with --force; the old champion moves to @previous-champion.
                                                  e.g.  %mlops promote churn 3 --metric f1
  %mlops alias NAME ALIAS VERSION | %mlops alias NAME ALIAS --delete
      Point an alias at a version (or remove it).   e.g.  %mlops alias churn challenger 4
  %mlops models [NAME]      registered models, or the versions of NAME
  %mlops history NAME       the audit log of NAME (alias/stage changes, promotion decisions)
  %mlops help               this text (also: %mlops?)

Python twins: nbmlops.autolog(); nbmlops.autolog.start(), end(), cell_run(), status(), runs_table();
nbmlops.registry.register_run(), nbmlops.promote(), Client.set_registered_model_alias(),
nbmlops.registry.models_table(), nbmlops.registry.history_table().
"""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so IPython shows a one-line UsageError."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> Any:  # type: ignore[override]
        raise UsageError(message or f"{self.prog}: invalid arguments")


def _pairs(items: list[str], what: str) -> dict[str, str]:
    """Parse ``k=v`` words; quotes around values are removed."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"%mlops {what}: expected key=value, got {item!r}")
        pairs[key] = value
    return pairs


def _build_parser() -> _Parser:
    parser = _Parser(prog="%mlops", add_help=False, description=MANUAL)
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    autolog = sub.add_parser("autolog", add_help=False)
    autolog.add_argument("state", choices=["on", "off"])
    autolog.add_argument("--experiment")
    autolog.add_argument("--no-models", action="store_true")
    autolog.add_argument("--no-figures", action="store_true")
    start = sub.add_parser("start", add_help=False)
    start.add_argument("name")
    start.add_argument("--tags", nargs="*", default=[])
    end = sub.add_parser("end", add_help=False)
    end.add_argument(
        "--status", default="FINISHED", type=str.upper, choices=["FINISHED", "FAILED", "KILLED"]
    )
    for name in ("param", "tag"):
        item = sub.add_parser(name, add_help=False)
        item.add_argument("pairs", nargs="+")
    metric = sub.add_parser("metric", add_help=False)
    metric.add_argument("pairs", nargs="+")
    metric.add_argument("--step", type=int)
    sub.add_parser("status", add_help=False)
    runs = sub.add_parser("runs", add_help=False)
    runs.add_argument("--last", type=int)
    runs.add_argument("--filter", default="")
    runs.add_argument("--experiment")
    runs.add_argument("--all", action="store_true")
    register = sub.add_parser("register", add_help=False)
    register.add_argument("run")
    register.add_argument("name")
    register.add_argument("--alias")
    register.add_argument("--path")
    promote = sub.add_parser("promote", add_help=False)
    promote.add_argument("name")
    promote.add_argument("version")
    promote.add_argument("--metric", default="f1")
    promote.add_argument("--min-delta", type=float, default=0.0)
    promote.add_argument("--lower-is-better", action="store_true")
    promote.add_argument("--alias", default="champion")
    promote.add_argument("--force", action="store_true")
    alias = sub.add_parser("alias", add_help=False)
    alias.add_argument("name")
    alias.add_argument("alias")
    alias.add_argument("version", nargs="?")
    alias.add_argument("--delete", action="store_true")
    models = sub.add_parser("models", add_help=False)
    models.add_argument("name", nargs="?")
    history = sub.add_parser("history", add_help=False)
    history.add_argument("name")
    sub.add_parser("help", add_help=False)
    return parser


def _build_cell_parser() -> _Parser:
    parser = _Parser(prog="%%mlops", add_help=False)
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    run = sub.add_parser("run", add_help=False)
    run.add_argument("--name")
    run.add_argument("--tags", nargs="*", default=[])
    return parser


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%mlops: cannot parse arguments ({exc})") from None


@magics_class
class MlopsMagics(Magics):
    """The ``%mlops`` line magic and ``%%mlops`` cell magic."""

    @line_magic
    def mlops(self, line: str = "") -> Any:
        args = _build_parser().parse_args(_split(line))
        if args.command in (None, "help"):
            print(MANUAL)
            return None
        try:
            return getattr(self, f"_do_{args.command}")(args)
        except NbMlopsError as exc:
            raise UsageError(f"%mlops {args.command}: {exc}") from None

    mlops.__doc__ = MANUAL

    @cell_magic("mlops")
    def mlops_cell(self, line: str = "", cell: str = "") -> Any:
        args = _build_cell_parser().parse_args(_split(line))
        if args.command != "run":
            raise UsageError("%%mlops: expected `%%mlops run [--name NAME] [--tags k=v ...]`")
        from nbmlops import autolog as api

        try:
            api.cell_run(name=args.name, tags=_pairs(args.tags, "run --tags"))
        except NbMlopsError as exc:
            raise UsageError(f"%%mlops run: {exc}") from None
        result = self.shell.run_cell(cell, store_history=False)
        session = api.notebook_session()
        if session is not None and session.cell is not None and result.error_in_exec is not None:
            session.cell.error = result.error_in_exec
        return None

    # ----------------------------------------------------------------- subcommands
    def _do_autolog(self, args: argparse.Namespace) -> None:
        from nbmlops import autolog as api

        if args.state == "off":
            api.autolog(enable=False)
            print("nbmlops autolog off (session run finished)")
            return
        run_id = api.autolog(
            experiment=args.experiment,
            log_models=not args.no_models,
            log_figures=not args.no_figures,
        )
        info = api.status()
        print(
            f"nbmlops autolog on · experiment {info['experiment']!r} · session run {run_id} · store {info['store']}"
        )

    def _do_start(self, args: argparse.Namespace) -> None:
        from nbmlops import autolog as api

        run_id = api.start(args.name, _pairs(args.tags, "start --tags"))
        print(f"started parent run {args.name!r} ({run_id})")

    def _do_end(self, args: argparse.Namespace) -> None:
        from nbmlops import autolog as api

        run_id = api.end(args.status)
        print(f"ended parent run {run_id} ({args.status})")

    def _cell_run_id(self) -> str:
        from nbmlops import autolog as api

        return api.cell_run()

    def _do_param(self, args: argparse.Namespace) -> None:
        from nbmlops import tracking

        run_id = self._cell_run_id()
        client = tracking.get_client()
        for key, value in _pairs(args.pairs, "param").items():
            client.log_param(run_id, key, value.strip("'\""))

    def _do_metric(self, args: argparse.Namespace) -> None:
        from nbmlops import tracking

        values: dict[str, float] = {}
        for key, text in _pairs(args.pairs, "metric").items():
            try:
                values[key] = float(text)
            except ValueError:
                raise UsageError(f"%mlops metric: {key}={text!r} is not a number") from None
        run_id = self._cell_run_id()
        client = tracking.get_client()
        for key, value in values.items():
            client.log_metric(run_id, key, value, step=args.step)

    def _do_tag(self, args: argparse.Namespace) -> None:
        from nbmlops import tracking

        run_id = self._cell_run_id()
        client = tracking.get_client()
        for key, value in _pairs(args.pairs, "tag").items():
            client.set_tag(run_id, key, value.strip("'\""))

    def _do_status(self, args: argparse.Namespace) -> None:
        from nbmlops import autolog as api

        for key, value in api.status().items():
            print(f"{key:>15}: {value}")

    def _do_runs(self, args: argparse.Namespace) -> Any:
        from nbmlops import autolog as api

        return api.runs_table(
            last=args.last,
            filter_string=args.filter,
            experiment=args.experiment,
            all_experiments=args.all,
        )

    # ----------------------------------------------------------------- registry
    def _notebook_experiment(self) -> str | None:
        from nbmlops import autolog as api

        session = api.notebook_session(required=False)
        if session is None:
            return None
        return session.experiment_name()

    def _do_register(self, args: argparse.Namespace) -> None:
        from nbmlops import registry

        version = registry.register_run(
            args.run,
            args.name,
            alias=args.alias,
            path=args.path,
            experiment=self._notebook_experiment() if args.run == "last" else None,
        )
        aliases = f" @{', @'.join(version.aliases)}" if version.aliases else ""
        print(f"registered {version.name} v{version.version}{aliases} from {version.source}")

    def _do_promote(self, args: argparse.Namespace) -> None:
        from nbmlops import registry

        decision = registry.promote(
            args.name,
            args.version,
            metric=args.metric,
            greater_is_better=not args.lower_is_better,
            min_delta=args.min_delta,
            alias=args.alias,
            force=args.force,
        )
        print(decision)

    def _do_alias(self, args: argparse.Namespace) -> None:
        from nbmlops import tracking

        client = tracking.get_client()
        if args.delete:
            if args.version is not None:
                raise UsageError("%mlops alias: give either VERSION or --delete, not both")
            client.delete_registered_model_alias(args.name, args.alias)
            print(f"removed @{args.alias} from {args.name}")
            return
        if args.version is None:
            raise UsageError("%mlops alias: expected NAME ALIAS VERSION (or NAME ALIAS --delete)")
        client.set_registered_model_alias(args.name, args.alias, args.version)
        version = client.get_model_version_by_alias(args.name, args.alias)
        print(f"{args.name} @{args.alias} -> v{version.version}")

    def _do_models(self, args: argparse.Namespace) -> Any:
        from nbmlops import registry

        return registry.models_table(args.name)

    def _do_history(self, args: argparse.Namespace) -> Any:
        from nbmlops import registry

        return registry.history_table(args.name)


def load(shell: Any) -> None:
    """Register the magics and the session hooks (the whole of ``%load_ext nbmlops``)."""
    from nbmlops.autolog import session

    shell.register_magics(MlopsMagics)
    notebook = session.get_or_create(shell)
    if notebook.settings.autolog and not notebook.autolog_enabled:
        notebook.autolog_on()  # c.NbMlops.autolog = True


def unload(shell: Any) -> None:
    """``%unload_ext nbmlops``: remove hooks; open runs end KILLED."""
    from nbmlops.autolog import session

    session.drop()
