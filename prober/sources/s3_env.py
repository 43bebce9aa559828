"""S3 settings from the environment alone, when nothing else could change them.

Loading botocore and building its session costs ~60 ms (its signer's imports, urllib3,
the credential chain): most of what a ``--state`` rerun over an unchanged bucket does
beside Python's own start-up. When the environment alone decides what botocore would
resolve — static keys in ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, which come
first in botocore's chain, no AWS config or shared-credentials file, and no ``AWS_*``
variable beyond :data:`UNDERSTOOD` — the S3 fast path takes its settings from here and
botocore is not loaded at all. Anything else (a profile, SSO, roles, instance metadata,
a config file, any other ``AWS_*`` setting) goes through botocore's own chain.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from prober.sources.s3_sign import Settings, StaticCredentials

# what this module reads, and the settings that change nothing a fast-path request does
UNDERSTOOD = frozenset({
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
    "AWS_CA_BUNDLE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_EC2_METADATA_DISABLED",  # instance metadata: never asked when keys are static
    "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE",  # prober retries itself (botocore's are off)
})  # fmt: skip


def plain(environ: Mapping[str, str] | None = None) -> Settings | None:
    """The fast path's settings when the environment alone decides them, else None:
    the keys, ``AWS_ENDPOINT_URL_S3`` else ``AWS_ENDPOINT_URL``, ``AWS_CA_BUNDLE``, and
    botocore's defaults for the rest."""
    env = os.environ if environ is None else environ
    for name, value in env.items():
        if name.startswith("AWS_") and (name not in UNDERSTOOD or not value):
            return None  # a setting only botocore knows, or an empty one: its call
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if not (key and secret):
        return None
    for path in (
        env.get("AWS_CONFIG_FILE") or "~/.aws/config",
        env.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials",
    ):
        if os.path.exists(os.path.expanduser(path)):
            return None  # profiles, endpoints, s3 settings …: botocore reads them
    return Settings(
        StaticCredentials(key, secret, env.get("AWS_SESSION_TOKEN")),
        env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"),
        ca_bundle=env.get("AWS_CA_BUNDLE"),
    )
