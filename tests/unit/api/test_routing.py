"""Routing: every operation reachable, labels decoded, fixed queries, unknown paths."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from lambdaplane.api import protocol
from lambdaplane.api.routing import Router, split_request_uri
from lambdaplane.errors import UnknownOperationException


def _request_for(op: Any) -> tuple[str, str, dict[str, list[str]], dict[str, str]]:
    """A request that should reach ``op``: dummy values for every label."""
    segments, fixed = split_request_uri(op.http["requestUri"])
    labels: dict[str, str] = {}
    parts = []
    for segment in segments:
        if segment.startswith("{"):
            name = segment.strip("{}+")
            labels[name] = "7" if name == "VersionNumber" else f"dummy-{name.lower()}"
            parts.append(labels[name])
        else:
            parts.append(segment)
    query = {key: [value] for key, value in fixed}
    return op.http["method"], "/" + "/".join(parts), query, labels


def test_model_has_91_operations(model: Any) -> None:
    assert len(model.operation_names) == 91


def test_every_operation_is_reachable(model: Any, router: Router) -> None:
    for name in model.operation_names:
        op = model.operation_model(name)
        method, path, query, labels = _request_for(op)
        matched, got = router.match(method, path, query)
        assert matched.name == name, (method, path, query)
        assert got == labels


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn",
            "arn:aws:lambda:us-east-1:123456789012:function:my-fn",
        ),
        ("my-fn%3A%24LATEST", "my-fn:$LATEST"),
        ("arn:aws:lambda:us-east-1:123456789012:function:my-fn", None),
        ("a+b", "a+b"),
        ("caf%C3%A9", "café"),
    ],
)
def test_uri_labels_are_percent_decoded(router: Router, raw: str, expected: str | None) -> None:
    op, labels = router.match("GET", f"/2015-03-31/functions/{raw}/configuration", {})
    assert op.name == "GetFunctionConfiguration"
    assert labels == {"FunctionName": expected or raw}


def test_encoded_slash_stays_inside_a_label(router: Router) -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST/durable-execution/n/id"
    encoded = arn.replace(":", "%3A").replace("/", "%2F").replace("$", "%24")
    op, labels = router.match("GET", f"/2025-12-01/durable-executions/{encoded}/history", {})
    assert op.name == "GetDurableExecutionHistory"
    assert labels == {"DurableExecutionArn": arn}


def test_a_label_never_spans_a_slash(router: Router) -> None:
    with pytest.raises(UnknownOperationException):
        router.match("GET", "/2015-03-31/functions/a/b/configuration", {})


def test_empty_label_does_not_match(router: Router) -> None:
    with pytest.raises(UnknownOperationException):
        router.match("GET", "/2015-03-31/functions//configuration", {})


def test_trailing_slash_is_ignored(router: Router) -> None:
    assert router.match("GET", "/2015-03-31/functions/", {})[0].name == "ListFunctions"
    assert router.match("POST", "/2015-03-31/functions/", {})[0].name == "CreateFunction"


def test_methods_select_the_operation(router: Router) -> None:
    path = "/2015-03-31/functions/my-fn"
    assert router.match("GET", path, {})[0].name == "GetFunction"
    assert router.match("DELETE", path, {})[0].name == "DeleteFunction"
    path = "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af"
    assert router.match("GET", path, {})[0].name == "ListTags"
    assert router.match("POST", path, {})[0].name == "TagResource"
    assert router.match("DELETE", path, {"tagKeys": ["a"]})[0].name == "UntagResource"


def test_layer_version_by_arn_is_chosen_by_its_fixed_query(router: Router) -> None:
    arn = "arn:aws:lambda:us-east-1:123456789012:layer:l:1"
    by_arn = {"find": ["LayerVersion"], "Arn": [arn]}
    assert router.match("GET", "/2018-10-31/layers", by_arn)[0].name == "GetLayerVersionByArn"
    assert router.match("GET", "/2018-10-31/layers", {})[0].name == "ListLayers"
    other = {"find": ["Other"]}
    assert router.match("GET", "/2018-10-31/layers", other)[0].name == "ListLayers"


def test_provisioned_concurrency_list_is_chosen_by_its_fixed_query(router: Router) -> None:
    path = "/2019-09-30/functions/my-fn/provisioned-concurrency"
    listed = router.match("GET", path, {"List": ["ALL"], "MaxItems": ["5"]})
    assert listed == (listed[0], {"FunctionName": "my-fn"})
    assert listed[0].name == "ListProvisionedConcurrencyConfigs"
    assert router.match("GET", path, {"Qualifier": ["1"]})[0].name == (
        "GetProvisionedConcurrencyConfig"
    )
    assert router.match("PUT", path, {"Qualifier": ["1"]})[0].name == (
        "PutProvisionedConcurrencyConfig"
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/2015-03-31"),
        ("GET", "/2015-03-31/nothing-here"),
        ("PATCH", "/2015-03-31/functions/my-fn"),
        ("HEAD", "/2015-03-31/functions"),
        ("GET", "/2015-03-31/functions/my-fn/configuration/extra"),
        ("GET", "relative/path"),
    ],
)
def test_unknown_routes_raise_unknown_operation(router: Router, method: str, path: str) -> None:
    with pytest.raises(UnknownOperationException) as caught:
        router.match(method, path, {})
    assert caught.value.status == 404
    assert caught.value.message is not None
    assert caught.value.message.startswith("Unknown operation")
    status, headers, body = protocol.render_error(caught.value, "req-1")
    assert status == 404
    assert (b"x-amzn-errortype", b"UnknownOperationException") in headers
    assert (b"content-type", b"application/json") in headers
    assert json.loads(body)["message"].startswith("Unknown operation")


# ------------------------------------------------------------- generic (fake model)


def _fake_model(routes: dict[str, tuple[str, str]]) -> Any:
    operations = {
        name: SimpleNamespace(name=name, http={"method": method, "requestUri": uri})
        for name, (method, uri) in routes.items()
    }
    return SimpleNamespace(operation_names=list(operations), operation_model=operations.get)


def test_greedy_labels_take_the_rest_of_the_path() -> None:
    router = Router(
        _fake_model(
            {
                "GetObject": ("GET", "/{Bucket}/{Key+}"),
                "ListObjects": ("GET", "/{Bucket}"),
            }
        )
    )
    op, labels = router.match("GET", "/bucket/a/b%2Fc/d%20e", {})
    assert op.name == "GetObject"
    assert labels == {"Bucket": "bucket", "Key": "a/b/c/d e"}
    op, labels = router.match("GET", "/bucket/k", {})
    assert (op.name, labels) == ("GetObject", {"Bucket": "bucket", "Key": "k"})
    assert router.match("GET", "/bucket", {})[0].name == "ListObjects"


def test_literal_segments_win_over_labels() -> None:
    router = Router(
        _fake_model(
            {
                "GetThing": ("GET", "/things/{Id}"),
                "ListSpecial": ("GET", "/things/special"),
            }
        )
    )
    assert router.match("GET", "/things/special", {})[0].name == "ListSpecial"
    assert router.match("GET", "/things/other", {})[0].name == "GetThing"


def test_fixed_query_without_value_matches_on_presence() -> None:
    router = Router(
        _fake_model(
            {"GetVersioning": ("GET", "/{Bucket}?versioning"), "ListObjects": ("GET", "/{Bucket}")}
        )
    )
    assert router.match("GET", "/b", {"versioning": [""]})[0].name == "GetVersioning"
    assert router.match("GET", "/b", {})[0].name == "ListObjects"
