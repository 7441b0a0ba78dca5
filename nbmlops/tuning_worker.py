"""``python -m nbmlops.tuning_worker PAYLOAD INDEX``: one worker process of ``tune(n_workers=K)``.

The notebook (or script) that called :func:`nbmlops.tune` writes ``PAYLOAD`` (the pickled
objective, study, storage and run settings) and starts K of these. Each loads the same Optuna
study from the shared storage, runs its share of the trials, and logs every trial as a child
of the same tuning run into the same nbmlops store. It stops after its running trial when the
stop file appears or its parent process is gone; SIGINT is ignored (the notebook stops the
workers gracefully), SIGTERM aborts the running trial (its run ends ``KILLED``).
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the worker; the exit code is 0 when its trials ran (failed trials included)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or not args[1].isdigit():
        print("usage: python -m nbmlops.tuning_worker PAYLOAD INDEX", file=sys.stderr)
        return 2
    from nbmlops.tuning import run_worker

    try:
        done = run_worker(args[0], int(args[1]))
    except KeyboardInterrupt:
        print("nbmlops tuning worker: terminated", file=sys.stderr)
        return 130
    print(f"nbmlops tuning worker {args[1]}: {done} trials")
    return 0


if __name__ == "__main__":
    sys.exit(main())
