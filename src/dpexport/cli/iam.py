"""``dpexport iam render`` (CONTRACT §11): a thin command over
:func:`dpexport.api_storage.iam_render`."""

from __future__ import annotations

import json

import click

from dpexport import api_storage as api
from dpexport.cli.common import common_options, echo_json, json_option, settings_of


@click.group("iam")
@common_options
@click.pass_context
def iam_group(ctx: click.Context, config_path: str | None, local_root: str | None) -> None:
    """Bucket access (spec 6.2): print the IAM bindings for gcloud or Terraform."""
    settings_of(ctx, config_path, local_root)


@iam_group.command("render")
@common_options
@json_option('[{"bucket", "gcloud", "iam_policy", ...}, {"kms_key", "command", ...}]')
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
        echo_json(docs)
        return
    if not docs:
        click.echo("no bucket_policies in the config")
    for doc in docs:
        if "kms_key" in doc:  # a key's rotation, after the buckets
            click.echo(f"# {doc['kms_key']}: rotate every {doc['key_rotation_days']} days")
            click.echo(doc["command"])
            continue
        click.echo(f"# {doc['bucket']}: {doc['gcloud']}")
        click.echo(json.dumps(doc["iam_policy"], indent=2))


COMMANDS = (iam_group,)
