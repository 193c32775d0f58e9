"""What every `protiv` command prints through: one console, folding tables, and outside text shown
literally.

Everything shown that the CLI did not write itself (vendor error texts, exception messages, company
ids, URLs, reasons kept in the sync state, settings, paths) goes through `literal`: rich would read
"[/]" in it as markup and crash, or "[green]...[/green]" as the CLI's own output, and a terminal would
obey an escape sequence or a carriage return in it.

Commands print with ``output.console`` (the module attribute, looked up at each call), so a test can
put a wider console in its place.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text
from typer.core import TyperArgument, TyperCommand

from protiv_dagster.text import visible

console = Console()


def table(*headers: str, **options) -> RichTable:
    """A table whose cells fold instead of being cut: ids, URLs and reasons are read whole at 80 columns."""
    from rich import box

    # No vertical rules: at 80 columns every character goes to the values.
    shown = RichTable(*headers, **{"box": box.SIMPLE_HEAD, "pad_edge": False, **options})
    for column in shown.columns:
        column.overflow = "fold"
    return shown


def print_table(rows: RichTable, whole: tuple[int, ...] = (0,)) -> None:
    """Print ``rows`` with the ``whole`` columns (ids) never broken inside a value: the other
    columns give way first."""
    for index in whole:
        column = rows.columns[index]
        widest = max((len(str(cell)) for cell in column._cells), default=0)
        column.min_width = min(max(widest, len(str(column.header))), 40)
    console.print(rows)


def literal(value: object, style: str = "", *, cell: bool = False) -> Text:
    """Outside text, shown exactly as it is: no markup, no emoji codes, terminal controls visible."""
    return Text(visible(str(value), keep_line_breaks=not cell), style=style)


def say(*parts: str | Text, style: str = "") -> None:
    """Print one message: ``str`` parts are the CLI's own markup, ``Text`` parts (``literal``)
    are outside text."""
    console.print(
        Text.assemble(*(Text.from_markup(part) if isinstance(part, str) else part for part in parts), style=style)
    )


def say_error(error: object) -> None:
    say(literal(error), style="red")


class _PlainArgument(TyperArgument):
    """A positional argument in ``--help`` as click writes it: ``COMPANY_ID`` in the usage line and in
    the list, without typer's ``{COMPANY_ID}`` braces and ``<str>`` type tag, which read as syntax."""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw if self.required else f"[{self.display_name_raw}]"
        return name if self.nargs == 1 else f"{name}..."

    def display_type_rich(self, ctx: Any) -> str | None:  # typer's own click Context
        return None


class Command(TyperCommand):
    """Every `protiv` command (``app.command(cls=Command)``): its arguments help as plain names."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument:
                param.__class__ = _PlainArgument
