"""``tglake query``: run one file of ``athena_sql/`` locally or on Athena."""

from __future__ import annotations

import click

from chalicelib import queries
from chalicelib.cli.base import load_settings, main, warn_if_missing
from chalicelib.errors import QueryError


@main.command("query")
@click.argument("name", required=False)
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter value (repeatable); see --list for each file's parameters.",
)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(queries.FORMATS),
    default="table",
    show_default=True,
    help="How to print the rows.",
)
@click.option(
    "-e",
    "--engine",
    type=click.Choice(["local", "athena"]),
    default="local",
    show_default=True,
    help="DuckDB over the local folders, or Athena through boto3.",
)
@click.option("--list", "list_only", is_flag=True, help="List the query files.")
@click.option(
    "--show-sql",
    is_flag=True,
    help="Print the filled SQL, without its header, instead of running it.",
)
def query(
    name: str | None,
    params: tuple[str, ...],
    fmt: str,
    engine: str,
    list_only: bool,
    show_sql: bool,
) -> None:
    """Run the athena_sql/ file NAME and print its answer.

    Locally, DuckDB reads TGLAKE_ENRICHED and TGLAKE_RAW through the same tables
    Athena has (messages, raw_updates, all_messages); the Athena SQL is translated
    so that the answers match Athena's. Table setup files run only on Athena.
    """
    if list_only:
        click.echo(_listing(), nl=False)
        return
    if not name:
        raise click.UsageError("name a query, or use --list to see them")
    given = _parse_params(params)
    settings = load_settings()
    if show_sql:
        click.echo(queries.statement(queries.render(name, settings, given)), nl=False)
        return
    if engine == "athena":
        click.echo(f"running {name} on Athena ...", err=True)
        result = queries.run_athena(name, settings, given)
    else:
        warn_if_missing(settings, "enriched", "raw")
        result = queries.run_local(name, settings, given)
    click.echo(queries.format_result(result, fmt), nl=False)


def _parse_params(pairs: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise QueryError(f"--param takes KEY=VALUE, not {pair!r}")
        values[key.strip()] = value
    return values


def _listing() -> str:
    lines = []
    for item in queries.available():
        kind = "setup" if item.is_ddl else "query"
        lines.append(f"{item.name}  [{kind}]  {item.title}")
        for param in item.parameters:
            lines.append(
                f"    --param {param.name}=<{param.kind}>  "
                f"(default {param.default})  {param.help}"
            )
    return "\n".join(lines) + "\n"
