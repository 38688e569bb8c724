package lambdaplane.runtime;

import com.amazonaws.services.lambda.runtime.LambdaLogger;
import com.amazonaws.services.lambda.runtime.logging.LogFormat;
import com.amazonaws.services.lambda.runtime.logging.LogLevel;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.text.SimpleDateFormat;
import java.util.Date;
import java.util.TimeZone;

/**
 * The function's LambdaLogger (Context.getLogger() and LambdaRuntime.getLogger() both return it).
 *
 * <p>Text format writes the message, prefixed "[LEVEL] " when a level is given, as AWS's runtime
 * does; JSON format writes {"timestamp","level","message","AWSRequestId"}. Messages below
 * AWS_LAMBDA_LOG_LEVEL are dropped (UNDEFINED never is). AWS frames each call as one log event;
 * here the log is line-based, so a message gets a newline unless it ends with one.
 */
public final class RuntimeLogger implements LambdaLogger {

    /** The one logger; it writes to stdout until the runtime hands it its stream. */
    public static final RuntimeLogger INSTANCE = new RuntimeLogger();

    private volatile PrintStream out = System.out;
    private volatile String requestId;
    private final LogFormat format;
    private final LogLevel minimum;

    private RuntimeLogger() {
        format = LogFormat.fromString(System.getenv("AWS_LAMBDA_LOG_FORMAT"));
        String level = System.getenv("AWS_LAMBDA_LOG_LEVEL");
        LogLevel parsed = LogLevel.UNDEFINED;
        if (level != null && !level.isEmpty()) {
            try {
                parsed = LogLevel.fromString(level);
            } catch (IllegalArgumentException e) {
                parsed = LogLevel.UNDEFINED;
            }
        }
        minimum = parsed;
    }

    void setOutput(PrintStream stream) {
        out = stream;
    }

    /** The request being served, for JSON lines; null between invocations. */
    void setRequestId(String id) {
        requestId = id;
    }

    LogFormat format() {
        return format;
    }

    @Override
    public void log(String message) {
        log(message, LogLevel.UNDEFINED);
    }

    @Override
    public void log(byte[] message) {
        log(message, LogLevel.UNDEFINED);
    }

    @Override
    public void log(String message, LogLevel level) {
        if (!enabled(level)) {
            return;
        }
        String text = String.valueOf(message);
        if (format == LogFormat.JSON) {
            text = jsonLine(text, level);
        } else if (level != null && level != LogLevel.UNDEFINED) {
            text = "[" + level.name() + "] " + text;
        }
        emit(text.getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public void log(byte[] message, LogLevel level) {
        if (enabled(level) && message != null) {
            emit(message); // AWS does not format byte messages either
        }
    }

    private boolean enabled(LogLevel level) {
        return level == null || level == LogLevel.UNDEFINED || minimum == LogLevel.UNDEFINED
                || level.ordinal() >= minimum.ordinal();
    }

    private void emit(byte[] bytes) {
        PrintStream stream = out;
        synchronized (stream) {
            stream.write(bytes, 0, bytes.length);
            if (bytes.length == 0 || bytes[bytes.length - 1] != '\n') {
                stream.write('\n');
            }
            stream.flush();
        }
    }

    private String jsonLine(String message, LogLevel level) {
        SimpleDateFormat iso = new SimpleDateFormat("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'");
        iso.setTimeZone(TimeZone.getTimeZone("UTC"));
        StringBuilder sb = new StringBuilder(message.length() + 96);
        sb.append("{\"timestamp\":");
        Json.quote(iso.format(new Date()), sb);
        sb.append(",\"level\":");
        Json.quote((level == null ? LogLevel.UNDEFINED : level).name(), sb);
        sb.append(",\"message\":");
        Json.quote(message, sb);
        String id = requestId;
        if (id != null) {
            sb.append(",\"AWSRequestId\":");
            Json.quote(id, sb);
        }
        return sb.append('}').toString();
    }
}
