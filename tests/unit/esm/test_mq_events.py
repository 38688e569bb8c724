"""Amazon MQ event shapes: ``aws:rmq`` and ``aws:mq`` against AWS's documented examples
("Using Lambda with Amazon MQ" and "Filter events from an Amazon MQ event source")."""

from __future__ import annotations

import asyncio
import base64
import datetime
import decimal
import json
from typing import Any

import aiormq

from lambdaplane.esm.activemq import ActiveMqPoller, jms_destination, mq_message
from lambdaplane.esm.model import MappingConfig
from lambdaplane.esm.mq import Delivery, mq_view
from lambdaplane.esm.rabbitmq import (
    RabbitMqPoller,
    amqp_url,
    java_date,
    java_value,
    queue_key,
    rmq_message,
)

BROKER = "arn:aws:mq:us-west-2:111122223333:broker:test:b-9bcfa592-423a-4942-879d-eb284b418fc8"

# AWS's example RabbitMQ message (bodySize aside: the documented 80 is not its data's size).
AWS_RMQ_MESSAGE: dict[str, Any] = {
    "basicProperties": {
        "contentType": "text/plain",
        "contentEncoding": None,
        "headers": {
            "header1": {"bytes": [118, 97, 108, 117, 101, 49]},
            "header2": {"bytes": [118, 97, 108, 117, 101, 50]},
            "numberInHeader": 10,
        },
        "deliveryMode": 1,
        "priority": 34,
        "correlationId": None,
        "replyTo": None,
        "expiration": "60000",
        "messageId": None,
        "timestamp": "Jan 1, 1970, 12:33:41 AM",
        "type": None,
        "userId": "AIDACKCEVSQ6C2EXAMPLE",
        "appId": None,
        "clusterId": None,
        "bodySize": 43,
    },
    "redelivered": False,
    "data": "eyJ0aW1lb3V0IjowLCJkYXRhIjoiQ1pybWYwR3c4T3Y0YnFMUXhENEUifQ==",
}

# AWS's example ActiveMQ message, with its documented key order.
AWS_MQ_MESSAGE_KEYS = [
    "messageID",
    "messageType",
    "deliveryMode",
    "replyTo",
    "type",
    "expiration",
    "priority",
    "correlationId",
    "redelivered",
    "destination",
    "data",
    "timestamp",
    "brokerInTime",
    "brokerOutTime",
    "properties",
]


def mapping(kind: str, **config: Any) -> MappingConfig:
    return MappingConfig(
        uuid="u-1",
        function_name="fn",
        qualifier=None,
        source_kind=kind,
        config={"EventSourceArn": BROKER, "Queues": ["test"], **config},
    )


# -- aws:rmq ----------------------------------------------------------------------------


def test_rabbitmq_message_matches_aws_example() -> None:
    properties = {
        "content_type": "text/plain",
        "content_encoding": None,
        "headers": {"header1": "value1", "header2": "value2", "numberInHeader": 10},
        "delivery_mode": 1,
        "priority": 34,
        "correlation_id": None,
        "reply_to": None,
        "expiration": "60000",
        "message_id": None,
        "timestamp": datetime.datetime(1970, 1, 1, 0, 33, 41, tzinfo=datetime.UTC),
        "message_type": None,
        "user_id": "AIDACKCEVSQ6C2EXAMPLE",
        "app_id": None,
        "cluster_id": "",
    }
    body = base64.b64decode(AWS_RMQ_MESSAGE["data"])
    message = rmq_message(properties, body, redelivered=False)
    assert message == AWS_RMQ_MESSAGE
    assert list(message["basicProperties"]) == list(AWS_RMQ_MESSAGE["basicProperties"])


def test_rabbitmq_message_from_pamqp_properties() -> None:
    props = aiormq.spec.Basic.Properties(message_id="m-1", delivery_mode=2)
    message = rmq_message(dict(props), b"hi", redelivered=True)
    assert message["basicProperties"]["messageId"] == "m-1"
    assert message["basicProperties"]["deliveryMode"] == 2
    assert message["basicProperties"]["headers"] is None
    assert message["basicProperties"]["bodySize"] == 2
    assert message["redelivered"] is True and message["data"] == "aGk="


def test_java_values_as_lambda_serializes_them() -> None:
    assert java_value("é") == {"bytes": [-61, -87]}  # Java bytes are signed
    assert java_value(b"\xff") == {"bytes": [-1]}
    assert java_value(bytearray(b"\x01\xfe")) == [1, -2]
    assert java_value(decimal.Decimal("2.50")) == 2.5
    assert java_value(decimal.Decimal("3")) == 3
    assert java_value({"a": ["x", 1, True, None]}) == {"a": [{"bytes": [120]}, 1, True, None]}
    assert java_value(None) is None


def test_java_dates() -> None:
    utc = datetime.UTC
    assert (
        java_date(datetime.datetime(2024, 3, 9, 13, 5, 7, tzinfo=utc)) == "Mar 9, 2024, 1:05:07 PM"
    )
    assert java_date(datetime.datetime(2024, 12, 31, 12, 0, 0, tzinfo=utc)) == (
        "Dec 31, 2024, 12:00:00 PM"
    )
    plus_two = datetime.timezone(datetime.timedelta(hours=2))
    assert java_date(datetime.datetime(2024, 1, 1, 1, 0, 0, tzinfo=plus_two)) == (
        "Dec 31, 2023, 11:00:00 PM"
    )


def test_queue_key_defaults_to_the_root_virtual_host() -> None:
    assert queue_key("test", None) == "test::/"
    assert queue_key("orders", "shop") == "orders::shop"


def test_amqp_url_quotes_credentials_and_virtual_host() -> None:
    url = amqp_url("amqp://10.0.0.1:5672", "gu@st", "p:w/d", "/")
    assert url == "amqp://gu%40st:p%3Aw%2Fd@10.0.0.1:5672/"
    named = amqp_url("amqp://10.0.0.1", "u", "p", "v", "esm 1")
    assert named == "amqp://u:p@10.0.0.1/v?name=esm%201"

    async def parsed() -> aiormq.Connection:  # as aiormq reads it (it wants a running loop)
        return aiormq.Connection(amqp_url("amqps://broker.example", "u", "p", "a/b"))

    connection = asyncio.run(parsed())
    assert connection.vhost == "a/b" and connection.url.port == 5671


def test_rabbitmq_event_envelope() -> None:
    poller = RabbitMqPoller(
        mapping("rabbitmq", SourceAccessConfigurations=[{"Type": "VIRTUAL_HOST", "URI": "v1"}])
    )
    first = rmq_message({}, b"a", False)
    second = rmq_message({}, b"b", True)
    items = [Delivery(m, json.dumps(m).encode(), n) for n, m in enumerate([first, second])]
    event = json.loads(poller.payload(items))
    assert event == {
        "eventSource": "aws:rmq",
        "eventSourceArn": BROKER,
        "rmqMessagesByQueue": {"test::v1": [first, second]},
    }


# -- aws:mq -----------------------------------------------------------------------------


def test_activemq_text_message_matches_aws_example() -> None:
    headers = {
        "message-id": "ID:b-9bcfa592-1.mq.us-east-2.amazonaws.com-37557-1234520418293-4:1:1:1:1",
        "destination": "/queue/testQueue",
        "subscription": "lambdaplane-1",
        "ack": "ID:ack-1",
        "expires": "60000",
        "priority": "1",
        "correlation-id": "myJMSCoID",
        "timestamp": "1598827811958",
        "index": "1",
        "doAlarm": "false",
        "myCustomProperty": "value",
    }
    message = mq_message(headers, b"ABC:AAAA", "testQueue", 1598827811959)
    assert list(message) == AWS_MQ_MESSAGE_KEYS
    assert message == {
        "messageID": headers["message-id"],
        "messageType": "jms/text-message",
        "deliveryMode": 1,
        "replyTo": None,
        "type": None,
        "expiration": 60000,
        "priority": 1,
        "correlationId": "myJMSCoID",
        "redelivered": False,
        "destination": {"physicalName": "testQueue"},
        "data": "QUJDOkFBQUE=",
        "timestamp": 1598827811958,
        "brokerInTime": 1598827811958,
        "brokerOutTime": 1598827811959,
        "properties": {"index": "1", "doAlarm": "false", "myCustomProperty": "value"},
    }


def test_activemq_bytes_message_and_jms_headers() -> None:
    headers = {
        "message-id": "ID:2",
        "content-length": "3",
        "persistent": "true",
        "redelivered": "true",
        "reply-to": "/queue/replies",
        "type": "order",
        "timestamp": "5",
    }
    message = mq_message(headers, b"\x00\x01\x02", "q", 9)
    assert message["messageType"] == "jms/bytes-message"
    assert message["deliveryMode"] == 2 and message["redelivered"] is True
    assert message["replyTo"] == "queue://replies" and message["type"] == "order"
    assert message["expiration"] == 0 and message["priority"] == 0
    assert message["properties"] is None  # as AWS sends a message without properties
    assert base64.b64decode(message["data"]) == b"\x00\x01\x02"


def test_jms_destination_names() -> None:
    assert jms_destination("/topic/t") == "topic://t"
    assert jms_destination("/temp-queue/x") == "temp-queue://x"
    assert jms_destination("plain") == "plain"
    assert jms_destination(None) is None


def test_activemq_event_envelope() -> None:
    poller = ActiveMqPoller(mapping("mq"))
    message = mq_message({"message-id": "ID:1"}, b"x", "test", 1)
    event = json.loads(poller.payload([Delivery(message, json.dumps(message).encode(), None)]))
    assert event == {"eventSource": "aws:mq", "eventSourceArn": BROKER, "messages": [message]}


# -- what filters see -------------------------------------------------------------------


def test_filters_see_decoded_data() -> None:
    def data_of(raw: bytes) -> Any:
        return mq_view({"data": base64.b64encode(raw).decode(), "redelivered": False})["data"]

    assert data_of(b'{"RequestCode": "AAAA"}') == {"RequestCode": "AAAA"}
    assert data_of(b"[1, 2]") == [1, 2]
    assert data_of(b"ABC:AAAA") == "ABC:AAAA"
    assert data_of(b"42") == "42"  # a JSON scalar stays a plain string
    assert data_of(b"\xff\xfe") == "//4="  # not UTF-8: left as it was
