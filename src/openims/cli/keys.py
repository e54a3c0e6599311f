"""``openims keys``: the token and credential keys (Keystone's Fernet layout, in files or the database)."""

from __future__ import annotations

from typing import Annotated

import typer

from openims.cli.common import out as console
from openims.cli.server import DataOpt, DbOpt, local_runtime

app = typer.Typer(help="Token and credential keys (Fernet, Keystone's layout; files or the database).",
                  no_args_is_help=True)


CredentialsOpt = Annotated[bool, typer.Option(
    "--credentials", help="rotate the keys sealing access-key secrets instead of the token keys")]


@app.command("rotate")
def keys_rotate(data_dir: DataOpt = None, database_url: DbOpt = None, credentials: CredentialsOpt = False) -> None:
    """Promote the staged key to primary and stage a new one; tokens and secrets sealed before stay readable."""
    from openims.iam.access_keys import reseal_all

    with local_runtime(data_dir, database_url) as rt:
        if not credentials:
            rt.keys.rotate()
            console.print(f"rotated the token keys in {rt.keys.where}")
        else:
            # Move every secret to the current primary, rotate (the oldest key may go), then move them to
            # the new primary, which every process already holds as its staged key.
            with rt.db.transaction() as s:
                reseal_all(s, rt.credential_keys.load())
            rt.credential_keys.rotate()
            with rt.db.transaction() as s:
                count = reseal_all(s, rt.credential_keys.load())
            console.print(f"rotated the credential keys in {rt.credential_keys.where}; {count} secret(s) re-sealed")
        console.print(f"every process uses them within {rt.settings.key_refresh_seconds:g} s "
                      "(OPENIMS_KEY_REFRESH_SECONDS), without restart; tokens already issued stay valid")


@app.command("new-master-key")
def new_master_key() -> None:
    """Print a new master key for OPENIMS_KEY_STORE=database (keep it as a secret; give it to every process)."""
    from cryptography.fernet import Fernet

    print(Fernet.generate_key().decode("ascii"))
