"""The ``openims`` command, assembled here in one place from one module per command group.

Server side (this machine): ``serve``, ``worker``, ``db`` (``cli.server``), ``keys`` (``cli.keys``),
``store`` and ``obs adopt`` (``cli.store``), ``cluster`` (``cli.cluster``).
Client side, over HTTP through ``openims.client``: ``obs``, ``image`` (with ``image tag`` and the
sharing commands of ``cli.share``), ``job``, ``quota``, ``iam`` (with ``iam ak``), ``account`` (operators),
``audit`` (the audit trail).
"""

from __future__ import annotations

import typer

from openims.cli import account, ak, audit, cluster, iam, image, job, keys, obs, quota, server, share, store

app = typer.Typer(help="openims: image management service compatible with Huawei Cloud IMS.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
app.command("serve")(server.serve)
app.command("serve-s3")(server.serve_s3)
app.command("worker")(server.worker_command)
app.command("cluster")(cluster.cluster)
app.add_typer(server.db_app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(store.app, name="store")
obs.app.command("adopt")(store.obs_adopt)
app.add_typer(obs.app, name="obs")
image.app.add_typer(share.tag_app, name="tag")
image.app.add_typer(share.image_commands)
app.add_typer(image.app, name="image")
app.add_typer(job.app, name="job")
app.add_typer(quota.app, name="quota")
iam.app.add_typer(ak.app, name="ak")
app.add_typer(iam.app, name="iam")
app.add_typer(account.app, name="account")
app.add_typer(audit.app, name="audit")


def main() -> None:
    app()
