package lambdaplane.runtime;

import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * A client of the Runtime API 2018-06-01 over one kept-alive HTTP/1.1 connection, on a socket
 * channel: java.net.http costs ~100 ms of class loading on a cold JVM, and java.net.Socket
 * drags in proxy selection; a channel costs a few classes. Each request is one write; a
 * connection the server closed is reopened once per request.
 */
final class RuntimeApi {

    private static final String PREFIX = "/2018-06-01/runtime";
    private static final int MAX_HEAD = 64 * 1024;
    /** Bodies up to this size are copied behind the head and sent with it. */
    private static final int INLINE_BODY = 64 * 1024;

    /** One /next answer. */
    static final class Invocation {
        final String requestId;
        final long deadlineMs;
        final String invokedFunctionArn;
        final String traceId;
        final String clientContext;
        final String cognitoIdentity;
        final byte[] payload;

        Invocation(Map<String, String> headers, byte[] payload) {
            this.requestId = headers.get("lambda-runtime-aws-request-id");
            this.deadlineMs = parseLong(headers.get("lambda-runtime-deadline-ms"));
            this.invokedFunctionArn = headers.get("lambda-runtime-invoked-function-arn");
            this.traceId = headers.get("lambda-runtime-trace-id");
            this.clientContext = headers.get("lambda-runtime-client-context");
            this.cognitoIdentity = headers.get("lambda-runtime-cognito-identity");
            this.payload = payload;
        }
    }

    private final String host;
    private final int port;
    private final String hostHeader;
    private SocketChannel socket;
    private final byte[] buffer = new byte[MAX_HEAD];
    private int start;
    private int end;
    private int status;
    private final Map<String, String> headers = new HashMap<String, String>();

    /** A client of the API at {@code address} ("host:port", AWS_LAMBDA_RUNTIME_API). */
    RuntimeApi(String address) {
        int colon = address.lastIndexOf(':');
        this.host = colon < 0 ? address : address.substring(0, colon);
        this.port = colon < 0 ? 80 : Integer.parseInt(address.substring(colon + 1));
        this.hostHeader = address;
    }

    /** Waits for the next invocation. */
    Invocation next() throws IOException {
        byte[] body = exchange("GET", PREFIX + "/invocation/next", null, null);
        if (status != 200) {
            throw new IOException("GET /invocation/next answered " + status + ": " + utf8(body));
        }
        return new Invocation(headers, body);
    }

    /** Posts an invocation's result; false when the API refused it (too large, wrong id). */
    boolean respond(String requestId, byte[] body) throws IOException {
        exchange("POST", PREFIX + "/invocation/" + requestId + "/response", null, body);
        return status == 202;
    }

    boolean error(String requestId, String errorType, byte[] body) throws IOException {
        exchange("POST", PREFIX + "/invocation/" + requestId + "/error", errorType, body);
        return status == 202;
    }

    boolean initError(String errorType, byte[] body) throws IOException {
        exchange("POST", PREFIX + "/init/error", errorType, body);
        return status == 202;
    }

    // -- HTTP -------------------------------------------------------------------------------

    private byte[] exchange(String method, String path, String errorType, byte[] body) throws IOException {
        byte[] request = request(method, path, errorType, body);
        boolean fresh = socket == null;
        while (true) {
            try {
                if (socket == null) {
                    connect();
                }
                write(request);
                if (body != null && body.length > INLINE_BODY) {
                    write(body);
                }
                return readResponse();
            } catch (IOException e) {
                close();
                if (fresh) {
                    throw e;
                }
                fresh = true; // a kept-alive connection may have been closed: try once anew
            }
        }
    }

    /** The request head, with a small body appended so that it goes out in one write. */
    private byte[] request(String method, String path, String errorType, byte[] body) {
        StringBuilder head = new StringBuilder(160);
        head.append(method).append(' ').append(path).append(" HTTP/1.1\r\nHost: ").append(hostHeader)
                .append("\r\nUser-Agent: lambdaplane-java/").append(System.getProperty("java.version"));
        if (errorType != null) {
            head.append("\r\nLambda-Runtime-Function-Error-Type: ").append(errorType);
        }
        if (body != null) {
            head.append("\r\nContent-Type: application/json\r\nContent-Length: ").append(body.length);
        }
        head.append("\r\n\r\n");
        byte[] headBytes = head.toString().getBytes(StandardCharsets.UTF_8);
        if (body == null || body.length == 0 || body.length > INLINE_BODY) {
            return headBytes;
        }
        byte[] all = new byte[headBytes.length + body.length];
        System.arraycopy(headBytes, 0, all, 0, headBytes.length);
        System.arraycopy(body, 0, all, headBytes.length, body.length);
        return all;
    }

    private void connect() throws IOException {
        SocketChannel channel = SocketChannel.open(new InetSocketAddress(host, port));
        channel.setOption(StandardSocketOptions.TCP_NODELAY, Boolean.TRUE);
        socket = channel;
        start = 0;
        end = 0;
    }

    private void write(byte[] bytes) throws IOException {
        ByteBuffer pending = ByteBuffer.wrap(bytes);
        while (pending.hasRemaining()) {
            socket.write(pending);
        }
    }

    /** Reads into {@code into[offset..offset+length)}; -1 at end of stream. */
    private int read(byte[] into, int offset, int length) throws IOException {
        return socket.read(ByteBuffer.wrap(into, offset, length));
    }

    private void close() {
        if (socket != null) {
            try {
                socket.close();
            } catch (IOException e) {
                // already gone
            }
        }
        socket = null;
        start = 0;
        end = 0;
    }

    private byte[] readResponse() throws IOException {
        int headEnd = findHeadEnd();
        String head = new String(buffer, start, headEnd - start, StandardCharsets.UTF_8);
        start = headEnd + 4;
        headers.clear();
        int lineEnd = head.indexOf("\r\n");
        String statusLine = lineEnd < 0 ? head : head.substring(0, lineEnd);
        int space = statusLine.indexOf(' ');
        try {
            status = Integer.parseInt(statusLine.substring(space + 1, space + 4));
        } catch (RuntimeException e) {
            throw new IOException("bad status line: " + statusLine);
        }
        while (lineEnd >= 0) {
            int next = head.indexOf("\r\n", lineEnd + 2);
            String line = head.substring(lineEnd + 2, next < 0 ? head.length() : next);
            int colon = line.indexOf(':');
            if (colon > 0) {
                headers.put(line.substring(0, colon).trim().toLowerCase(java.util.Locale.ROOT),
                        line.substring(colon + 1).trim());
            }
            lineEnd = next;
        }
        String length = headers.get("content-length");
        if (length != null) {
            return readBody(Integer.parseInt(length));
        }
        if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
            return readChunked();
        }
        byte[] rest = readToEnd();
        close();
        return rest;
    }

    /** The index of the blank line ending the head that starts at {@code start}. */
    private int findHeadEnd() throws IOException {
        while (true) {
            for (int i = start; i + 3 < end; i++) {
                if (buffer[i] == '\r' && buffer[i + 1] == '\n' && buffer[i + 2] == '\r' && buffer[i + 3] == '\n') {
                    return i;
                }
            }
            if (!fill()) {
                throw new EOFException("connection closed before a response");
            }
        }
    }

    /** Reads more into the buffer, compacting it first; false at end of stream. */
    private boolean fill() throws IOException {
        if (start > 0) {
            System.arraycopy(buffer, start, buffer, 0, end - start);
            end -= start;
            start = 0;
        }
        if (end == buffer.length) {
            throw new IOException("response head over " + MAX_HEAD + " bytes");
        }
        int n = read(buffer, end, buffer.length - end);
        if (n < 0) {
            return false;
        }
        end += n;
        return true;
    }

    private byte[] readBody(int length) throws IOException {
        byte[] body = new byte[length];
        int have = Math.min(length, end - start);
        System.arraycopy(buffer, start, body, 0, have);
        start += have;
        while (have < length) {
            int n = read(body, have, length - have);
            if (n < 0) {
                throw new EOFException("connection closed in a response body");
            }
            have += n;
        }
        return body;
    }

    private byte[] readChunked() throws IOException {
        java.io.ByteArrayOutputStream body = new java.io.ByteArrayOutputStream();
        while (true) {
            String sizeLine = readLine();
            int semicolon = sizeLine.indexOf(';');
            int size = Integer.parseInt((semicolon < 0 ? sizeLine : sizeLine.substring(0, semicolon)).trim(), 16);
            if (size == 0) {
                while (!readLine().isEmpty()) {
                    // trailers
                }
                return body.toByteArray();
            }
            body.write(readBody(size));
            readLine();
        }
    }

    private String readLine() throws IOException {
        while (true) {
            for (int i = start; i + 1 < end; i++) {
                if (buffer[i] == '\r' && buffer[i + 1] == '\n') {
                    String line = new String(buffer, start, i - start, StandardCharsets.ISO_8859_1);
                    start = i + 2;
                    return line;
                }
            }
            if (!fill()) {
                throw new EOFException("connection closed in a chunked body");
            }
        }
    }

    private byte[] readToEnd() throws IOException {
        java.io.ByteArrayOutputStream body = new java.io.ByteArrayOutputStream();
        body.write(buffer, start, end - start);
        start = end;
        byte[] chunk = new byte[8192];
        int n;
        while ((n = read(chunk, 0, chunk.length)) >= 0) {
            body.write(chunk, 0, n);
        }
        return body.toByteArray();
    }

    private static long parseLong(String s) {
        try {
            return s == null ? 0L : Long.parseLong(s.trim());
        } catch (NumberFormatException e) {
            return 0L;
        }
    }

    private static String utf8(byte[] bytes) {
        return new String(bytes, StandardCharsets.UTF_8);
    }
}
