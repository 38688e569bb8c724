package lambdaplane.runtime;

/**
 * A fault in how the function is built rather than in what it did: a class that is missing,
 * has no usable handler method or cannot be instantiated. Reported with AWS's wording; a fatal
 * fault ends the runtime (during init: an init error).
 */
final class UserFault extends RuntimeException {
    private static final long serialVersionUID = 1L;

    final String errorMessage;
    /** The exception class behind the fault, or null when there is none. */
    final String errorType;
    /** The printed stack trace behind the fault, or null. */
    final String trace;
    final boolean fatal;

    UserFault(String errorMessage, String errorType, String trace, boolean fatal) {
        super(errorMessage, null, false, false);
        this.errorMessage = errorMessage;
        this.errorType = errorType;
        this.trace = trace;
        this.fatal = fatal;
    }

    /** A fault with a message only. */
    static UserFault of(String message) {
        return new UserFault(message, null, null, false);
    }

    /** A fault standing for {@code t}. */
    static UserFault of(Throwable t, boolean fatal) {
        return new UserFault(ErrorReport.messageOf(t), t.getClass().getName(), ErrorReport.printed(t), fatal);
    }
}
