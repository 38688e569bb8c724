"""CloudWatch filter patterns: the examples of AWS's "Filter pattern syntax" page and more."""

from __future__ import annotations

import json

import pytest

from lambdaplane.logsapi.filter_pattern import FilterPatternError, compile_pattern, split_message


def matches(pattern: str, message: str) -> bool:
    return compile_pattern(pattern).matches(message)


# -------------------------------------------------------------------------- terms

LINES = ["ERROR WARN message", "ERROR message", "WARN message"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("ERROR", [True, True, False]),
        ("?ERROR ?WARN", [True, True, True]),
        ("ERROR WARN", [True, False, False]),
        ("ERROR -WARN", [False, True, False]),
        ("-ERROR", [False, False, False]),  # exclusions alone select nothing
        ("?ERROR -WARN", [False, True, False]),
        ("message ?WARN", [True, False, True]),
        ("", [True, True, True]),
        ('""', [True, True, True]),
        ('" "', [True, True, True]),
        ("   ", [True, True, True]),
        ("error", [False, False, False]),  # case-sensitive
    ],
)
def test_terms(pattern: str, expected: list[bool]) -> None:
    assert [matches(pattern, line) for line in LINES] == expected


def test_terms_are_substrings_and_phrases_are_exact() -> None:
    assert matches("ERROR", "Exiting with ERRORCODE: -1")
    assert not matches('ERROR -"Exiting"', "Exiting with ERRORCODE: -1")
    assert not matches("ERROR - Exiting", "Exiting with ERRORCODE: -1")
    assert matches("Failed to process the request", "[WARN] the request: Failed to process")
    assert not matches('"Failed to process the request"', "[WARN] the request: Failed to process")
    assert matches('"Failed to process the request"', "[ERROR] Failed to process the request")
    assert matches(
        '"user@example.com" "a \\"quoted\\" word"', 'user@example.com said a "quoted" word'
    )
    assert matches('?"x y" ?zzz', "a x y b")


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("email@domain.com", "Invalid character(s) in term 'email@domain.com'"),
        ("?", "Invalid character(s) in term '?'"),
        ("ERROR 1.5", "Invalid character(s) in term '1.5'"),
        ('"unterminated', "Invalid filter pattern"),
        ("{ $.a = 1", "If a filter pattern starts with '{' it must end with '}'"),
        ("[a, b", "If a filter pattern starts with '[' it must end with ']'"),
    ],
)
def test_invalid_terms(pattern: str, message: str) -> None:
    with pytest.raises(FilterPatternError) as err:
        compile_pattern(pattern)
    assert str(err.value) == message


def test_regex_pattern() -> None:
    assert matches("%AUTHORIZED%", "[ERROR 401] UNAUTHORIZED REQUEST")
    assert matches("%^\\[SUCCESS%", "[SUCCESS 200] AUTHORIZED REQUEST")
    assert not matches("%^\\[SUCCESS%", "[ERROR 401] UNAUTHORIZED REQUEST")
    assert matches("%colou?r%", "the color")
    assert matches("%^INFO .*receipt$%", "INFO mail the receipt")
    assert not matches("%^INFO .*receipt$%", "INFO receipt sent")
    with pytest.raises(FilterPatternError):
        compile_pattern("%(a|b)%")  # AWS's subset has no groups


# ---------------------------------------------------------------------------- JSON

DOC = json.dumps(
    {
        "eventType": "UpdateTrail",
        "sourceIPAddress": "111.111.111.111",
        "arrayKey": ["value", "another value"],
        "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
        "SomeObject": None,
        "ThisFlag": True,
        "OtherFlag": False,
        "latency": 150,
        "ratio": 0.25,
        "code": "404",
        "user-name": "Ann",
    }
)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ('{ $.eventType = "UpdateTrail" }', True),
        ("{ $.eventType = UpdateTrail }", True),
        ('{ $.eventType != "UpdateTrail" }', False),
        ("{ $.eventType = Update* }", True),
        ("{ $.eventType = *Trail }", True),
        ("{ $.eventType = *dateTr* }", True),
        ("{ $.eventType = Up*il }", False),  # only a leading or trailing * is a wildcard
        ("{ $.eventType = update* }", False),
        ("{ $.eventType = * }", True),
        ("{ $.missing = * }", False),
        ("{ $.eventType = %^Upd% }", True),
        ("{ $.eventType != %^Upd% }", False),
        ("{ $.sourceIPAddress != 123.123.* }", True),
        ("{ $.sourceIPAddress = 111.111.* }", True),
        ('{ $.arrayKey[0] = "value" }', True),
        ('{ $.arrayKey[1] = "another value" }', True),
        ('{ $.arrayKey[2] = "value" }', False),
        ("{ $.objectList[1].id = 2 }", True),
        ("{ $.objectList[1].id = 1 }", False),
        ("{ $.objectList[0].name = a }", True),
        ("{ $.SomeObject IS NULL }", True),
        ("{ $.eventType IS NULL }", False),
        ("{ $.missing IS NULL }", False),
        ("{ $.SomeOtherObject NOT EXISTS }", True),
        ("{ $.SomeObject NOT EXISTS }", False),
        ("{ $.ThisFlag IS TRUE }", True),
        ("{ $.ThisFlag IS FALSE }", False),
        ("{ $.OtherFlag IS FALSE }", True),
        ("{ $.ThisFlag = true }", True),
        ("{ $.latency > 100 }", True),
        ("{ $.latency >= 150 }", True),
        ("{ $.latency > 150 }", False),
        ("{ $.latency < 1.5e2 }", False),
        ("{ $.latency <= +150 }", True),
        ("{ $.latency = 150 }", True),
        ("{ $.latency = 150.0 }", True),
        ("{ $.latency != 150 }", False),
        ("{ $.latency = 1* }", True),
        ("{ $.ratio < 10e-1 }", True),
        ("{ $.code = 404 }", True),
        ("{ $.code = 4* }", True),
        ("{ $.eventType > 1 }", False),
        ('{ $.user-name = "Ann" }', True),
        ("{ $.arrayKey = value }", False),  # an array is not a value
        ("{ $.arrayKey != value }", False),
        ("{ $.objectList[0] != 1 }", False),
        ("{ $.missing != 1 }", False),
        ("{ $.latency > 100 && $.eventType = UpdateTrail }", True),
        ("{ $.latency > 200 || $.eventType = UpdateTrail }", True),
        ("{ $.latency > 200 || $.eventType = Other }", False),
        ("{ ($.latency > 200 || $.ThisFlag IS TRUE) && $.code = 404 }", True),
        ("{($.latency>200||$.ThisFlag IS TRUE)&&$.code=405}", False),
    ],
)
def test_json(pattern: str, expected: bool) -> None:
    assert matches(pattern, DOC) is expected


COMPOUND = json.dumps(
    {
        "user": {"id": 1, "email": "John.Stiles@example.com"},
        "users": [
            {"id": 2, "email": "John.Doe@example.com"},
            {"id": 3, "email": "Jane.Doe@example.com"},
        ],
        "actions": ["GET", "PUT", "DELETE"],
        "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]],
    }
)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ('{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }', True),
        ('{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }', False),
        (
            '{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch'
            " && $.actions[2] = nomatch }",
            True,
        ),
        (
            '{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch)'
            " && $.actions[2] = nomatch }",
            False,
        ),
        ("{ $.coordinates[2][0] = 7 }", True),
        ("{ $.users[1].id > 2 && $.users[1].email = Jane* }", True),
    ],
)
def test_json_compound_conditions(pattern: str, expected: bool) -> None:
    assert matches(pattern, COMPOUND) is expected


def test_json_patterns_skip_messages_that_are_not_json() -> None:
    pattern = compile_pattern("{ $.level = ERROR }")
    assert pattern.matches('  {"level": "ERROR"}  ')
    assert not pattern.matches('INFO {"level": "ERROR"}')
    assert not pattern.matches('{"level": "ERROR"')
    assert not pattern.matches("ERROR")
    assert not compile_pattern("{ $.x NOT EXISTS }").matches("42")


@pytest.mark.parametrize(
    "pattern",
    [
        "{ }",
        "{ level = ERROR }",
        "{ $.level ~ ERROR }",
        "{ $.level = }",
        "{ $.level > abc }",
        "{ $.a = 1 && }",
        "{ ($.a = 1 }",
        "{ $.a IS MAYBE }",
        "{ $.a[x] = 1 }",
        "{ $ = 1 }",
        "{ $.a = 1 $.b = 2 }",
    ],
)
def test_invalid_json_patterns(pattern: str) -> None:
    with pytest.raises(FilterPatternError, match="Invalid filter pattern"):
        compile_pattern(pattern)


# ------------------------------------------------------------------ space-delimited

ACCESS = '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534'


def test_split_message_keeps_brackets_and_quotes_together() -> None:
    assert split_message(ACCESS) == [
        "127.0.0.1",
        "-",
        "frank",
        "10/Oct/2000:13:25:15 -0700",
        "GET /index.html HTTP/1.0",
        "404",
        "1534",
    ]
    assert split_message("  a   b\t[c d ") == ["a", "b", "[c", "d"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("[ip, user, username, timestamp, request, status_code, bytes]", True),
        ("[ip, user, username, timestamp, request, status_code]", False),  # 7 fields, not 6
        ("[..., status_code, bytes]", True),
        ("[ip, user, ..., status_code, bytes]", True),
        ("[ip, user, ...]", True),
        ("[...]", True),
        ("[ip, ..., request, ..., bytes]", True),
        ("[ip, user, username, timestamp, request, status_code, bytes > 1000]", True),
        ("[ip, user, username, timestamp, request, status_code, bytes > 2000]", False),
        ("[ip, user, username, timestamp, request, status_code = 404, bytes]", True),
        ("[ip, user, username, timestamp, request, status_code = 4*, bytes]", True),
        ("[ip, user, username, timestamp, request, status_code != 4*, bytes]", False),
        ("[ip, user, username, timestamp, request = *html*, status_code = 4*, bytes]", True),
        ("[ip, user, username, timestamp, request = *gif*, status_code = 4*, bytes]", False),
        ("[..., request = *.html*, status_code = 4*,]", False),  # two fields left: no bytes
        ("[..., request = *.html*, status_code = 4*, bytes]", True),
        ("[ip, user, username, timestamp, request, status_code = 4* && bytes > 1000, bytes]", True),
        (
            "[ip, user, username, timestamp, request, status_code = 403 || status_code = 404, bytes]",
            True,
        ),
        (
            "[ip, user, username, timestamp, request, status_code = 4* && status_code != 404, bytes]",
            False,
        ),
        ("[ip = %^127\\.%, ...]", True),
        ('[ip, user = "-", username = frank, ...]', True),
        ('[ip, user, username = "frank", timestamp = "10/Oct/2000:13:25:15 -0700", ...]', True),
    ],
)
def test_space_delimited(pattern: str, expected: bool) -> None:
    assert matches(pattern, ACCESS) is expected


def test_space_delimited_or_and_and_on_words() -> None:
    def select(pattern: str) -> list[bool]:
        return [matches(pattern, line) for line in LINES]

    assert select("[w1=ERROR, w2]") == [False, True, False]
    assert select("[w1=ERROR || w1=WARN, w2]") == [False, True, True]
    assert select("[w1!=ERROR&&w1!=WARN, ...]") == [False, False, False]
    assert select("[w1=ERROR, w2=WARN, w3]") == [True, False, False]
    assert select("[w1, ...]") == [True, True, True]


@pytest.mark.parametrize(
    "pattern",
    [
        "[]",
        "[a, , b]",
        "[a = ]",
        "[1abc]",
        "[a, b = 1 && c = 2]",  # c is not a field of the pattern
        "[a > x]",
        '["quoted", b]',
    ],
)
def test_invalid_space_delimited(pattern: str) -> None:
    with pytest.raises(FilterPatternError, match="Invalid filter pattern"):
        compile_pattern(pattern)


def test_many_ellipses_stay_bounded() -> None:
    pattern = compile_pattern("[..., a = x, ..., b = y, ..., c = z, ...]")
    assert not pattern.matches(" ".join(["w"] * 400))
    assert pattern.matches("w x w y w z w")
