"""The wire layer: AWS Lambda's rest-json protocol, driven by botocore's service model.

``routing`` maps an HTTP method and path to an operation, ``protocol`` turns a request
into the input dict boto3 would have sent (and validates it like Coral does) and turns
an output dict or a ``LambdaError`` back into a response. Nothing here knows what an
operation *does*; that is the service layer's job.
"""
