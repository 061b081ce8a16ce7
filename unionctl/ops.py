"""`unionctl projections SERVICE` and `unionctl rebuild SERVICE PROJECTION`: they run a service's own code.

Settings come from the environment, exactly as the service reads them (DATABASE_URL, DB_SCHEMA, its keys).
Only the store and the projections start: no relay, no consumer, no HTTP. The rebuild runs while the
service keeps serving (readers see the old rows until it commits; writers wait for it).
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

SERVICES = {
    "membership": ("MembershipService", "MembershipSettings"),
    "transfer": ("TransferService", "TransferSettings"),
    "servicecard": ("ServicecardService", "ServicecardSettings"),
    "feedback": ("FeedbackService", "FeedbackSettings"),
    "dues": ("DuesService", "DuesSettings"),
}

console = Console(highlight=False)

ServiceName = Annotated[str, typer.Argument(help=f"one of {', '.join(SERVICES)}")]


def load_service(name: str, **overrides: Any) -> Any:
    """`<Name>Service(<Name>Settings())` from `services/<name>/service.py`, with consumers off."""
    if name not in SERVICES:
        raise typer.BadParameter(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
    service_class, settings_class = SERVICES[name]
    module = importlib.import_module(f"services.{name}.service")
    settings = getattr(module, settings_class)(**{"run_consumers": False, **overrides})
    return getattr(module, service_class)(settings)


def projections(service: ServiceName) -> None:
    """The projections of a service (names for `rebuild`)."""
    runtime = load_service(service).runtime
    for projection in runtime.all_projections:
        console.print(f"{projection.name}  [dim](tables: {', '.join(projection.tables)})[/dim]")


def rebuild(service: ServiceName, projection: Annotated[str, typer.Argument(help="see `projections`")]) -> None:
    """Empty a projection's tables and replay the service's log (own events and inbox) into them."""
    runtime = load_service(service).runtime
    names = [p.name for p in runtime.all_projections]
    if projection not in names:
        raise typer.BadParameter(f"{service} has no projection {projection!r}; it has {', '.join(names)}")

    async def main() -> int:
        await runtime.start(background=False)
        try:
            with Progress(
                TextColumn(f"rebuilding {service}.{projection}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as bar:
                task = bar.add_task("rebuild", total=None)

                def progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                replayed: int = await runtime.projections.rebuild(projection, progress)
                bar.update(task, completed=replayed, total=max(replayed, 1))
        finally:
            await runtime.stop()
        return replayed

    replayed = asyncio.run(main())
    console.print(f"rebuilt {service}.{projection} from {replayed} log entries")
