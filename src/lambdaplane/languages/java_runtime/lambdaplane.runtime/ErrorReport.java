package lambdaplane.runtime;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * Errors as AWS's Java runtime reports them: {"errorMessage","errorType","stackTrace":[...]} to
 * the Runtime API, and "message: type" plus the printed stack trace to the log. Stack traces lose
 * this runtime's own frames (everything from the first of them down), as AWS's lose theirs.
 */
final class ErrorReport {

    /** Lambda-Runtime-Function-Error-Type of an exception the handler threw. */
    static final String USER_EXCEPTION = "Runtime.UserException";
    /** Lambda-Runtime-Function-Error-Type of a UserFault. */
    static final String BAD_FUNCTION_CODE = "Runtime.BadFunctionCode";

    private static final String OWN_PACKAGE = "lambdaplane.runtime.";

    private ErrorReport() {}

    /** The Runtime API document for an exception the handler threw (its trace filtered). */
    static byte[] document(Throwable t) {
        filter(t);
        StringBuilder sb = new StringBuilder(256);
        sb.append("{\"errorMessage\":");
        Json.quote(messageOf(t), sb);
        sb.append(",\"errorType\":");
        Json.quote(t.getClass().getName(), sb);
        sb.append(",\"stackTrace\":[");
        StackTraceElement[] frames = t.getStackTrace();
        for (int i = 0; i < frames.length; i++) {
            if (i > 0) {
                sb.append(',');
            }
            Json.quote(frames[i].toString(), sb);
        }
        sb.append("]}");
        return sb.toString().getBytes(StandardCharsets.UTF_8);
    }

    /** The Runtime API document for a fault: no stack trace, and no type when it has none. */
    static byte[] document(UserFault fault) {
        StringBuilder sb = new StringBuilder(128);
        sb.append("{\"errorMessage\":");
        Json.quote(fault.errorMessage, sb);
        if (fault.errorType != null) {
            sb.append(",\"errorType\":");
            Json.quote(fault.errorType, sb);
        }
        sb.append('}');
        return sb.toString().getBytes(StandardCharsets.UTF_8);
    }

    /**
     * What goes to the log: "message: type", then the printed trace. (AWS's text ends with one
     * more newline, invisible in its one log event; here it would be an empty line.)
     */
    static String logText(UserFault fault) {
        if (fault.errorType == null && fault.trace == null) {
            return fault.errorMessage + "\n";
        }
        return fault.errorMessage + ": " + (fault.errorType == null ? "" : fault.errorType) + "\n"
                + (fault.trace == null ? "" : fault.trace);
    }

    static String messageOf(Throwable t) {
        String message = t.getLocalizedMessage();
        return message == null ? t.getClass().getName() : message;
    }

    /** {@code t}'s printed stack trace, filtered. */
    static String printed(Throwable t) {
        filter(t);
        StringWriter text = new StringWriter();
        t.printStackTrace(new PrintWriter(text));
        return text.toString();
    }

    /** Cuts this runtime's frames off {@code t}, its causes and its suppressed exceptions. */
    static <T extends Throwable> T filter(T t) {
        filter(t, new IdentityHashMap<Throwable, Boolean>());
        return t;
    }

    private static void filter(Throwable t, Map<Throwable, Boolean> seen) {
        if (t == null || seen.put(t, Boolean.TRUE) != null) {
            return;
        }
        StackTraceElement[] frames = t.getStackTrace();
        for (int i = 0; i < frames.length; i++) {
            if (frames[i].getClassName().startsWith(OWN_PACKAGE)) {
                StackTraceElement[] kept = new StackTraceElement[i];
                System.arraycopy(frames, 0, kept, 0, i);
                t.setStackTrace(kept);
                break;
            }
        }
        filter(t.getCause(), seen);
        for (Throwable suppressed : t.getSuppressed()) {
            filter(suppressed, seen);
        }
    }
}
