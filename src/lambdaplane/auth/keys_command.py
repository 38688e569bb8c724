"""``lambdaplane keys``: add, list and remove the keys of other accounts' principals.

``keys add`` prints the new key once (its secret is not shown again); a running server
accepts it within a second. What such a key may do is up to the functions' resource-
based policies (AddPermission): see docs/permissions.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lambdaplane.auth.keys import KeyStore, KeyStoreError


@dataclass(frozen=True)
class KeysOptions:
    data_dir: Path
    action: str  # "add", "list" or "remove"
    account_id: str | None = None
    user: str | None = None
    org_id: str | None = None
    access_key_id: str | None = None  # the key to remove
    json: bool = False


def run(options: KeysOptions) -> int:
    """Exit status: 0, or 2 when the key cannot be added or removed, or the file read."""
    try:
        if options.action == "remove":
            assert options.access_key_id is not None
            removed = KeyStore.remove_foreign_key(options.data_dir, options.access_key_id)
            if options.json:
                print(json.dumps({"AccessKeyId": removed.access_key_id, "Arn": removed.arn}))
            else:
                print(f"removed {removed.access_key_id} ({removed.arn})")
            return 0
        if options.action == "add":
            assert options.account_id is not None
            key = KeyStore.add_foreign_key(
                options.data_dir, options.account_id, user=options.user, org_id=options.org_id
            )
            suffix = f"user/{options.user}" if options.user else "root"
            arn = f"arn:aws:iam::{options.account_id}:{suffix}"
            if options.json:
                print(
                    json.dumps(
                        {
                            "AccessKeyId": key.access_key_id,
                            "SecretAccessKey": key.secret_access_key,
                            "Arn": arn,
                            "OrgId": options.org_id,
                        }
                    )
                )
            else:
                print(f"principal:             {arn}")
                if options.org_id:
                    print(f"organization:          {options.org_id}")
                print(f"aws_access_key_id:     {key.access_key_id}")
                print(f"aws_secret_access_key: {key.secret_access_key}")
            return 0
        store = KeyStore.open(options.data_dir)
        rows = [
            {"AccessKeyId": k.access_key_id, "Arn": k.arn, "OrgId": k.org_id}
            for k in store.foreign_keys()
        ]
        if options.json:
            print(json.dumps(rows))
        else:
            for row in rows:
                print(f"{row['AccessKeyId']}  {row['Arn']}  {row['OrgId'] or '-'}")
        return 0
    except KeyStoreError as exc:
        print(f"lambdaplane keys: {exc}")
        return 2
