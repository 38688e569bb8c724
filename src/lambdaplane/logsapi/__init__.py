"""The CloudWatch Logs API subset, on the same endpoint as Lambda.

``server`` speaks AWS's JSON 1.1 protocol (``X-Amz-Target: Logs_20140328.<Op>``),
driven by botocore's ``logs`` model; ``handlers`` map operations onto the
``service``, which reads the store's log groups, streams and events;
``filter_pattern`` is CloudWatch's filter pattern language; ``retention`` is the
background sweep that deletes expired events.
"""
