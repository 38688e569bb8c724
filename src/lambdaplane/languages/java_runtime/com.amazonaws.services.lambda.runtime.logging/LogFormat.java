package com.amazonaws.services.lambda.runtime.logging;

/** The function's log format (its LoggingConfig), as AWS_LAMBDA_LOG_FORMAT says. */
public enum LogFormat {
    JSON,
    TEXT;

    /** JSON when {@code name} says so (any case), TEXT otherwise. */
    public static LogFormat fromString(String name) {
        return "JSON".equalsIgnoreCase(name) ? JSON : TEXT;
    }
}
