package com.amazonaws.services.lambda.runtime.logging;

/** Levels of {@code LambdaLogger.log(message, level)}; UNDEFINED is never filtered. */
public enum LogLevel {
    UNDEFINED,
    TRACE,
    DEBUG,
    INFO,
    WARN,
    ERROR,
    FATAL;

    /** The level named {@code name}, in any case; IllegalArgumentException otherwise. */
    public static LogLevel fromString(String name) {
        for (LogLevel level : values()) {
            if (level.name().equalsIgnoreCase(name)) {
                return level;
            }
        }
        throw new IllegalArgumentException(
                "Invalid log level: '" + name + "' expected one of [TRACE, DEBUG, INFO, WARN, ERROR, FATAL]");
    }
}
