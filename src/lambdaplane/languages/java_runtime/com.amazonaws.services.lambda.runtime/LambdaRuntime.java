package com.amazonaws.services.lambda.runtime;

import lambdaplane.runtime.RuntimeLogger;

/** Access to the runtime's logger outside a handler (static initialisers, helpers). */
public final class LambdaRuntime {

    private LambdaRuntime() {}

    /** The logger every {@link Context#getLogger()} returns too. */
    public static LambdaLogger getLogger() {
        return RuntimeLogger.INSTANCE;
    }
}
