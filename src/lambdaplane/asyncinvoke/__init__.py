"""Asynchronous invocation: the durable queue, delivery workers, destinations and DLQs.

``queue`` stores accepted events (deleted only once their outcome is handled),
``workers`` deliver them through the same path as a synchronous invoke, with AWS's
retries and maximum event age, ``destinations`` routes outcomes (OnSuccess/OnFailure,
DeadLetterConfig) to functions, SQS, SNS and EventBridge.
"""
