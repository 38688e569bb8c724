package lambdaplane.runtime;

import com.amazonaws.services.lambda.runtime.Context;
import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOError;
import java.io.IOException;
import java.io.PrintStream;
import java.io.UnsupportedEncodingException;

/**
 * lambdaplane's Java runtime: {@code java ... lambdaplane.runtime.Main HANDLER}.
 *
 * <p>Init: stdout and stderr become UTF-8 streams (the function's log), the handler's class is
 * loaded and instantiated once. An init failure goes to /init/error and the process exits.
 * Then, forever: /next, call the handler, post its response or its error. The runtime's own
 * code avoids lambdas and reflection-heavy libraries: every class it loads is paid for in the
 * cold start.
 */
public final class Main {

    private static final String TRACE_PROPERTY = "com.amazonaws.xray.traceHeader";

    private Main() {}

    public static void main(String[] args) throws UnsupportedEncodingException {
        PrintStream out = new PrintStream(new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 8192), true, "UTF-8");
        PrintStream err = new PrintStream(new BufferedOutputStream(new FileOutputStream(FileDescriptor.err), 8192), true, "UTF-8");
        System.setOut(out);
        System.setErr(err);
        RuntimeLogger logger = RuntimeLogger.INSTANCE;
        logger.setOutput(out);

        String handlerName = args.length > 0 ? args[0] : System.getenv("_HANDLER");
        String address = System.getenv("AWS_LAMBDA_RUNTIME_API");
        if (handlerName == null || address == null) {
            err.println("lambdaplane java runtime: needs the handler (argument or _HANDLER) and AWS_LAMBDA_RUNTIME_API");
            System.exit(2);
        }
        RuntimeApi api = new RuntimeApi(address);
        Handler handler;
        try {
            handler = HandlerLoader.load(handlerName, ClassLoader.getSystemClassLoader());
        } catch (UserFault fault) {
            logger.log(ErrorReport.logText(fault));
            flush(out, err);
            try {
                api.initError(ErrorReport.BAD_FUNCTION_CODE, ErrorReport.document(fault));
            } catch (IOException e) {
                err.println("lambdaplane java runtime: cannot report the init error: " + e);
                err.flush();
            }
            System.exit(1);
            return;
        }
        try {
            serve(api, handler, logger, out, err);
        } catch (IOException e) {
            err.println("lambdaplane java runtime: lost the Runtime API: " + e);
            err.flush();
            System.exit(1);
        }
        System.exit(1); // a fatal fault ended the loop
    }

    /** The invocation loop; returns after a fatal error (the environment must not be reused). */
    private static void serve(RuntimeApi api, Handler handler, RuntimeLogger logger, PrintStream out, PrintStream err)
            throws IOException {
        LambdaContext.Environment environment = new LambdaContext.Environment();
        while (true) {
            RuntimeApi.Invocation invocation = api.next();
            if (invocation.traceId != null) {
                System.setProperty(TRACE_PROPERTY, invocation.traceId);
            } else {
                System.clearProperty(TRACE_PROPERTY);
            }
            logger.setRequestId(invocation.requestId);
            Context context = new LambdaContext(environment, invocation);
            byte[] response;
            try {
                response = handler.handle(invocation.payload, context);
            } catch (UserFault fault) {
                logger.log(ErrorReport.logText(fault));
                flush(out, err);
                api.error(invocation.requestId, ErrorReport.BAD_FUNCTION_CODE, ErrorReport.document(fault));
                if (fault.fatal) {
                    return;
                }
                continue;
            } catch (Throwable t) {
                byte[] document = ErrorReport.document(t);
                logger.log(ErrorReport.logText(UserFault.of(t, false)));
                flush(out, err);
                api.error(invocation.requestId, ErrorReport.USER_EXCEPTION, document);
                if (t instanceof VirtualMachineError || t instanceof IOError) {
                    return;
                }
                continue;
            } finally {
                logger.setRequestId(null);
                Thread.interrupted(); // an interrupt the handler left must not reach the next one
            }
            flush(out, err);
            api.respond(invocation.requestId, response);
        }
    }

    /** What the function printed is in the log before its invocation ends. */
    private static void flush(PrintStream out, PrintStream err) {
        out.flush();
        err.flush();
        if (System.out != out) {
            System.out.flush();
        }
        if (System.err != err) {
            System.err.flush();
        }
    }
}
