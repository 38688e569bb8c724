"""lambdaplane: a self-hosted serverless compute platform, wire-compatible with AWS Lambda."""

__version__ = "0.1.0"
