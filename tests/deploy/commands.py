"""Parse a command line of a deployment file with the click command of the installed console script
it names, the way the program would parse it when started, without running it."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from importlib.metadata import entry_points

import click


def cli_of(script: str) -> click.Command:
    """The click command behind a console script (``dagster``, ``dagster-daemon``, ...)."""
    (entry_point,) = entry_points(group="console_scripts", name=script)
    module = importlib.import_module(entry_point.module)
    command = getattr(module, "cli", None) or entry_point.load()
    if not isinstance(command, click.Command):  # protiv: a typer application (its module's app) behind main()
        import typer.main

        command = typer.main.get_command(module.app)
    # typer carries a click of its own: a command is anything click-like.
    assert hasattr(command, "make_context"), f"{script} is not a click command"
    return command


def parse_command(argv: Sequence[str]) -> tuple[list[str], dict]:
    """(the subcommand path, the leaf command's parsed parameters) of ``argv``. Raises click's
    usage errors (unknown command or option, missing required option, bad value) as the program
    would on start."""
    script, *args = argv
    command = cli_of(script)
    context = command.make_context(script, list(args))
    path = [script]
    while hasattr(command, "resolve_command"):
        name, command, rest = command.resolve_command(context, [*context._protected_args, *context.args])
        assert command is not None, f"{' '.join(path)} has no subcommand {name!r}"
        path.append(name)
        context = command.make_context(name, rest, parent=context)
    return path, context.params
