"""``openims keys``: the token signing keys (Fernet key repository, Keystone's layout)."""

from __future__ import annotations

import typer

from openims.cli.common import out as console
from openims.cli.server import DataOpt, settings_from

app = typer.Typer(help="Token signing keys (Fernet key repository, Keystone's layout).", no_args_is_help=True)


@app.command("rotate")
def keys_rotate(data_dir: DataOpt = None) -> None:
    """Promote the staged key to primary and stage a new one; old tokens stay valid."""
    from openims.iam.keys import KeyRepository

    settings = settings_from(data_dir=data_dir)
    repo = KeyRepository(settings.key_dir)
    repo.ensure()
    repo.rotate()
    console.print(f"rotated keys in {settings.key_dir}; every process sharing the directory uses them within "
                  f"{settings.key_refresh_seconds:g} s (OPENIMS_KEY_REFRESH_SECONDS); tokens already issued stay valid")


