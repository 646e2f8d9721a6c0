"""``dpexport iam render`` (CONTRACT §11): a thin command over
:func:`dpexport.api_storage.iam_render`."""

from __future__ import annotations

import json

import click

from dpexport import api_storage as api
from dpexport.cli.common import common_options, settings_of


@click.group("iam")
@common_options
@click.pass_context
def iam_group(ctx: click.Context, config_path: str | None, local_root: str | None) -> None:
    """Bucket access (spec 6.2): print the IAM bindings for gcloud or Terraform."""
    settings_of(ctx, config_path, local_root)


@iam_group.command("render")
@common_options
@click.option("--json", "as_json", is_flag=True, help="print one JSON array of the documents")
@click.pass_context
def iam_render(
    ctx: click.Context, config_path: str | None, local_root: str | None, as_json: bool
) -> None:
    """Each bucket's uniform access and IAM bindings as JSON: the policy for
    `gcloud storage buckets set-iam-policy gs://BUCKET POLICY.json` and Terraform
    google_storage_bucket_iam_binding resources."""
    settings = settings_of(ctx, config_path, local_root)
    docs = api.iam_render(settings.workspace())
    if as_json:
        click.echo(json.dumps(docs, indent=2))
        return
    if not docs:
        click.echo("no bucket_policies in the config")
    for doc in docs:
        click.echo(f"# {doc['bucket']}: {doc['gcloud']}")
        click.echo(json.dumps(doc["iam_policy"], indent=2))


COMMANDS = (iam_group,)
