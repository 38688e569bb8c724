package lambdaplane.runtime;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Type;
import java.nio.charset.StandardCharsets;

/** The function's handler, in one of its shapes: event bytes in, response bytes out. */
abstract class Handler {

    private static final byte[] JSON_NULL = {'n', 'u', 'l', 'l'};

    /** The response to {@code event}; whatever the function throws is thrown on. */
    abstract byte[] handle(byte[] event, Context context) throws Throwable;

    /** Calls {@code method}, throwing what it throws rather than InvocationTargetException. */
    static Object call(Method method, Object target, Object[] args) throws Throwable {
        try {
            return method.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw e.getCause() != null ? e.getCause() : e;
        }
    }

    /** A handler that only reports the fault found while loading it, at every invocation. */
    static final class Faulty extends Handler {
        final UserFault fault;

        Faulty(UserFault fault) {
            this.fault = fault;
        }

        @Override
        byte[] handle(byte[] event, Context context) {
            throw fault;
        }
    }

    /**
     * A POJO handler: a RequestHandler, or a method taking (I, Context), (I), (Context) or ().
     * The event is read into the input type and the result written as JSON ("null" for void).
     */
    static final class Pojo extends Handler {
        private final RequestHandler<Object, Object> requestHandler;
        private final Method method;
        private final Object target;
        private final Type inputType; // null: the method takes no event
        private final boolean takesContext;
        private final boolean returnsVoid;

        @SuppressWarnings("unchecked")
        Pojo(RequestHandler<?, ?> handler, Type inputType, boolean returnsVoid) {
            this.requestHandler = (RequestHandler<Object, Object>) handler;
            this.method = null;
            this.target = null;
            this.inputType = inputType;
            this.takesContext = true;
            this.returnsVoid = returnsVoid;
        }

        Pojo(Method method, Object target, Type inputType, boolean takesContext) {
            this.requestHandler = null;
            this.method = method;
            this.target = target;
            this.inputType = inputType;
            this.takesContext = takesContext;
            Class<?> returned = method.getReturnType();
            this.returnsVoid = returned == void.class || returned == Void.class;
            Bean.accessible(method);
        }

        @Override
        byte[] handle(byte[] event, Context context) throws Throwable {
            Object input = null;
            if (inputType != null) {
                try {
                    input = read(event, inputType);
                } catch (Throwable t) {
                    throw new RuntimeException("An error occurred during JSON parsing", ErrorReport.filter(t));
                }
            }
            Object output;
            if (requestHandler != null) {
                output = requestHandler.handleRequest(input, context);
            } else {
                Object[] args = new Object[(inputType != null ? 1 : 0) + (takesContext ? 1 : 0)];
                int i = 0;
                if (inputType != null) {
                    args[i++] = input;
                }
                if (takesContext) {
                    args[i] = context;
                }
                output = call(method, target, args);
            }
            if (returnsVoid) {
                return JSON_NULL;
            }
            try {
                StringBuilder json = new StringBuilder(256);
                JsonWriter.write(output, json);
                return json.toString().getBytes(StandardCharsets.UTF_8);
            } catch (Throwable t) {
                throw new RuntimeException("An error occurred during JSON serialization of response", t);
            }
        }

        private static Object read(byte[] event, Type type) {
            String text = new String(event, StandardCharsets.UTF_8);
            if (text.trim().isEmpty()) {
                return JsonMapper.read(null, type);
            }
            return JsonMapper.read(Json.parse(text), type);
        }
    }

    /** A stream handler: a RequestStreamHandler, or a method over some of (InputStream, OutputStream, Context). */
    static final class Stream extends Handler {
        private final RequestStreamHandler streamHandler;
        private final Method method;
        private final Object target;
        private final boolean takesInput;
        private final boolean takesOutput;
        private final boolean takesContext;

        Stream(RequestStreamHandler handler) {
            this.streamHandler = handler;
            this.method = null;
            this.target = null;
            this.takesInput = true;
            this.takesOutput = true;
            this.takesContext = true;
        }

        Stream(Method method, Object target, boolean takesInput, boolean takesOutput, boolean takesContext) {
            this.streamHandler = null;
            this.method = method;
            this.target = target;
            this.takesInput = takesInput;
            this.takesOutput = takesOutput;
            this.takesContext = takesContext;
            Bean.accessible(method);
        }

        @Override
        byte[] handle(byte[] event, Context context) throws Throwable {
            ByteArrayInputStream input = new ByteArrayInputStream(event);
            ByteArrayOutputStream output = new ByteArrayOutputStream(1024);
            if (streamHandler != null) {
                streamHandler.handleRequest(input, output, context);
            } else {
                Object[] args = new Object[(takesInput ? 1 : 0) + (takesOutput ? 1 : 0) + (takesContext ? 1 : 0)];
                int i = 0;
                if (takesInput) {
                    args[i++] = input;
                }
                if (takesOutput) {
                    args[i++] = output;
                }
                if (takesContext) {
                    args[i] = context;
                }
                call(method, target, args);
            }
            return output.toByteArray();
        }
    }
}
