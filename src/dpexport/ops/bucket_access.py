"""Spec 6.2 bucket access: ``uniform_access`` and ``iam_bindings`` (issue 21, CONTRACT §11).

:func:`apply_access` writes them where the store takes them, then reads them back and
reports every difference; :func:`render` prints them for ``gcloud``/Terraform.

- S3: ``uniform_access: true`` is Object Ownership ``BucketOwnerEnforced`` (ACLs off;
  ``false``: ``ObjectWriter``); the bindings are a bucket policy, one ``dpexport-*``
  statement per role (statements of other authors are kept), the roles mapped to S3
  actions by :data:`S3_ACTIONS`. Only members that are AWS principals go in it: an ARN
  (``arn:aws:iam::...``, bare or after ``user:``/``serviceAccount:``/``group:``) and,
  with ``allow_public``, ``allUsers`` (``*``). GCP members (``group:x@y.com``,
  ``serviceAccount:x@p.iam.gserviceaccount.com``) are named as not applicable. The public
  access block is on (all four flags) unless a binding says ``allow_public``; then the
  policy flags are off so the public statement can take effect.
- GCS: uniform bucket-level access and the bucket IAM policy, authoritative per
  configured role (like Terraform's ``google_storage_bucket_iam_binding``).
- Azure: container RBAC is a management-plane setting (role assignments), and the Blob
  API has no uniform-access switch: said so, with ``dpexport iam render``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from dpexport.config.models.security import BucketPolicy, IamBinding
from dpexport.errors import ExportError

#: spec 6.1/6.2 roles -> the S3 actions they grant (bucket-level ones on the bucket ARN)
S3_ACTIONS: dict[str, tuple[str, ...]] = {
    "roles/storage.objectViewer": ("s3:GetObject", "s3:ListBucket"),
    "roles/storage.objectCreator": ("s3:PutObject",),
    "roles/storage.objectUser": (
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
    ),
    "roles/storage.objectAdmin": (
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
    ),
    "roles/storage.legacyBucketReader": ("s3:ListBucket", "s3:GetBucketLocation"),
    "roles/storage.admin": ("s3:*",),
    "custom/aws-s3-writer": ("s3:PutObject", "s3:GetObject", "s3:ListBucket"),
}
_BUCKET_ACTIONS = {"s3:ListBucket", "s3:GetBucketLocation"}
PUBLIC = ("allUsers", "allAuthenticatedUsers")
SID_PREFIX = "dpexport-"
RENDER_HINT = "'dpexport iam render' prints the bindings for gcloud/Terraform"


def merged(bindings: Iterable[IamBinding]) -> dict[str, list[str]]:
    """Members per role, in order, a role listed twice read as one binding (IAM policies
    and Terraform's authoritative bindings hold each role once)."""
    out: dict[str, list[str]] = {}
    for binding in bindings:
        members = out.setdefault(binding.role, [])
        members += [m for m in binding.members if m not in members]
    return out


def aws_principal(member: str, allow_public: bool) -> str | None:
    """The AWS principal of an IAM member, or ``None`` when it is not one."""
    if member == "allUsers" and allow_public:
        return "*"
    arn = (
        member.split(":", 1)[1]
        if member.split(":", 1)[0] in ("user", "serviceAccount", "group", "role")
        else member
    )
    return arn if arn.startswith("arn:aws:") else None


def s3_statements(
    bucket: str, bindings: Iterable[IamBinding]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The bucket-policy statements of ``bindings`` and what cannot be one."""
    statements: list[dict[str, Any]] = []
    skipped: list[str] = []
    for index, binding in enumerate(bindings):
        actions = S3_ACTIONS.get(binding.role)
        if actions is None:
            skipped.append(f"role {binding.role}: no S3 actions known for it; {RENDER_HINT}")
            continue
        principals: list[str] = []
        foreign: list[str] = []
        for member in binding.members:
            arn = aws_principal(member, binding.allow_public)
            (principals if arn else foreign).append(arn or member)
        if foreign:
            skipped.append(
                f"{binding.role} for {', '.join(foreign)}: not AWS principals (S3 takes "
                f"ARNs, arn:aws:iam::ACCOUNT:role/NAME); {RENDER_HINT}"
            )
        if not principals:
            continue
        resources = [f"arn:aws:s3:::{bucket}/*"]
        if set(actions) & _BUCKET_ACTIONS or "s3:*" in actions:
            resources.insert(0, f"arn:aws:s3:::{bucket}")
        who: Any = "*" if principals == ["*"] else {"AWS": sorted(set(principals))}
        statements.append(
            {
                "Sid": f"{SID_PREFIX}{index}-{binding.role.rsplit('/', 1)[-1]}",
                "Effect": "Allow",
                "Principal": who,
                "Action": list(actions),
                "Resource": resources,
            }
        )
    return statements, skipped


def apply_access(store: Any, policies: Mapping[str, BucketPolicy], result: Any) -> None:
    """Apply the ``bucket_policies`` entry of ``store``'s bucket (if any) and read it
    back; what is done goes to ``result.applied``, the rest to ``result.not_applied``."""
    scheme, _, rest = store.url.partition("://")
    local = not hasattr(store, "bucket_name")  # a folder (--local-root), no server
    policy = policies.get(rest.split("/", 1)[0] if local else store.bucket_name)
    if policy is None:
        return
    if local:
        result.not_applied.append(
            "uniform_access and iam_bindings: a local folder has no access policy; "
            f"run without --local-root to apply them to the bucket, or {RENDER_HINT}"
        )
    elif scheme == "s3":
        _apply_s3(store, policy, result)
    elif scheme == "gs":
        _apply_gcs(store, policy, result)
    elif scheme in ("az", "azure", "https"):
        result.not_applied.append(
            "uniform_access and iam_bindings: Azure container access is RBAC role "
            "assignments (management plane, 'az role assignment create'), which the Blob "
            f"API cannot set; {RENDER_HINT}"
        )


def _public(policy: BucketPolicy) -> bool:
    return any(b.allow_public and set(b.members) & set(PUBLIC) for b in policy.iam_bindings)


def _apply_s3(store: Any, policy: BucketPolicy, result: Any) -> None:
    client, bucket = store.client, store.bucket_name
    ownership = "BucketOwnerEnforced" if policy.uniform_access else "ObjectWriter"
    rules = {"Rules": [{"ObjectOwnership": ownership}]}
    store._call(
        "", lambda: client.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=rules)
    )
    got = store._call("", lambda: client.get_bucket_ownership_controls(Bucket=bucket))
    _compare(result, f"object ownership {ownership}", got["OwnershipControls"], rules)
    public = _public(policy)
    block = {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": not public,
        "RestrictPublicBuckets": not public,
    }
    store._call(
        "",
        lambda: client.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=block),
    )
    got = store._call("", lambda: client.get_public_access_block(Bucket=bucket))
    what = "public access block: " + (
        "ACLs blocked, public policy allowed (allow_public)"
        if public
        else "all public access blocked"
    )
    _compare(result, what, got["PublicAccessBlockConfiguration"], block)
    statements, skipped = s3_statements(bucket, policy.iam_bindings)
    result.not_applied += skipped
    others = [
        s
        for s in _s3_policy(store)["Statement"]
        if not str(s.get("Sid", "")).startswith(SID_PREFIX)
    ]
    if statements or others:
        doc = {"Version": "2012-10-17", "Statement": others + statements}
        store._call("", lambda: client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(doc)))
    back = {s.get("Sid"): s for s in _s3_policy(store)["Statement"]}
    for statement in statements:
        what = f"bucket policy {statement['Sid']}: {', '.join(statement['Action'])}"
        _compare(result, what, _norm(back.get(statement["Sid"], {})), _norm(statement))


def _s3_policy(store: Any) -> dict[str, Any]:
    try:
        resp = store._call("", lambda: store.client.get_bucket_policy(Bucket=store.bucket_name))
    except ExportError as exc:
        if "NoSuchBucketPolicy" in str(exc):
            return {"Statement": []}
        raise
    return dict(json.loads(resp["Policy"]))


def _norm(statement: Mapping[str, Any]) -> dict[str, Any]:
    """A statement with its lists as sorted tuples (S3 may return a one-item list as a
    string)."""

    def items(value: Any) -> tuple[str, ...]:
        return tuple(sorted([value] if isinstance(value, str) else value or []))

    principal = statement.get("Principal")
    aws = principal if principal == "*" else items((principal or {}).get("AWS"))
    return {
        "Effect": statement.get("Effect"),
        "Principal": aws,
        "Action": items(statement.get("Action")),
        "Resource": items(statement.get("Resource")),
    }


def _compare(result: Any, what: str, got: Any, wanted: Any) -> None:
    if got == wanted:
        result.applied.append(what)
    else:
        result.not_applied.append(f"{what}: read back differs, server has {got}, wanted {wanted}")


def _apply_gcs(store: Any, policy: BucketPolicy, result: Any) -> None:
    timeout = store.timeout
    bucket = store._call(
        "", lambda: store.client.get_bucket(store.bucket_name, timeout=timeout, retry=None)
    )
    bucket.iam_configuration.uniform_bucket_level_access_enabled = policy.uniform_access
    store._call("", lambda: bucket.patch(timeout=timeout, retry=None))
    back = store._call(
        "", lambda: store.client.get_bucket(store.bucket_name, timeout=timeout, retry=None)
    )
    got = bool(back.iam_configuration.uniform_bucket_level_access_enabled)
    _compare(
        result,
        f"uniform bucket-level access {'on' if policy.uniform_access else 'off'}",
        got,
        policy.uniform_access,
    )
    if not policy.iam_bindings:
        return
    wanted = {role: set(members) for role, members in merged(policy.iam_bindings).items()}
    try:
        iam = store._call(
            "", lambda: bucket.get_iam_policy(requested_policy_version=3, timeout=timeout)
        )
        kept = [b for b in iam.bindings if b["role"] not in wanted]
        iam.bindings = kept + [{"role": r, "members": m} for r, m in wanted.items()]
        store._call("", lambda: bucket.set_iam_policy(iam, timeout=timeout))
        read = store._call(
            "", lambda: bucket.get_iam_policy(requested_policy_version=3, timeout=timeout)
        )
    except ExportError as exc:
        result.not_applied.append(
            f"iam_bindings: the server did not take the IAM policy "
            f"({' '.join(str(exc).split())}); {RENDER_HINT}"
        )
        return
    served = {b["role"]: set(b["members"]) for b in read.bindings}
    for role, members in wanted.items():
        _compare(result, f"IAM {role}: {', '.join(sorted(members))}", served.get(role), members)


def render(policies: Mapping[str, BucketPolicy]) -> list[dict[str, Any]]:
    """One document per bucket: the IAM policy for ``gcloud storage buckets
    set-iam-policy gs://BUCKET FILE`` and the Terraform ``google_storage_bucket_iam_binding``
    resources of its bindings."""
    docs = []
    for name, policy in policies.items():
        bindings = [{"role": r, "members": m} for r, m in merged(policy.iam_bindings).items()]
        docs.append(
            {
                "bucket": name,
                "uniform_bucket_level_access": policy.uniform_access,
                "gcloud": f"gcloud storage buckets set-iam-policy gs://{name} POLICY.json",
                "iam_policy": {"version": 3, "bindings": bindings},
                "terraform": [
                    {"google_storage_bucket_iam_binding": {"bucket": name, **b}} for b in bindings
                ],
            }
        )
    return docs
