"""Function URLs: HTTP requests in, payload-format-2.0 events to the function, its
answer back as the HTTP response (``server``), with the pure parts beside it:
``event`` (request → event), ``response`` (result → response, error answers) and
``cors``."""
