"""Session-wide test environment: no network probes, dummy credentials everywhere."""

from __future__ import annotations

import os

# boto3 probes the EC2 metadata address when it lacks credentials; never let it.
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)

# Servers started by tests inherit this; functions must never see it.
os.environ["LAMBDAPLANE_TEST_SECRET"] = "server-side-secret"
