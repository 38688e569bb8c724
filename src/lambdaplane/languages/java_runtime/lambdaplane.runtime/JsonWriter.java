package lambdaplane.runtime;

import java.lang.reflect.Array;
import java.util.Base64;
import java.util.Calendar;
import java.util.Date;
import java.util.Iterator;
import java.util.Map;
import java.util.Optional;

/**
 * Results into JSON, as AWS's Java serialization writes them: maps, collections and arrays as
 * such; byte[] as base64; dates as epoch milliseconds; enums by name; NaN and infinities as
 * strings; JDK value types (UUID, URI, java.time, ...) as their string form; any other object
 * by its public getters and fields ({@link Bean}), leaving out those that are null.
 */
final class JsonWriter {

    private JsonWriter() {}

    private static final int MAX_DEPTH = 1000;

    /** Appends {@code value} as JSON; JsonMapper.MappingException for what cannot be written (cycles). */
    static void write(Object value, StringBuilder out) {
        write(value, out, 0);
    }

    static void write(Object value, StringBuilder out, int depth) {
        if (depth > MAX_DEPTH) {
            throw new JsonMapper.MappingException("Direct self-reference or nesting deeper than " + MAX_DEPTH);
        }
        if (value == null) {
            out.append("null");
        } else if (value instanceof String) {
            Json.quote((String) value, out);
        } else if (value instanceof Boolean) {
            out.append(((Boolean) value).booleanValue() ? "true" : "false");
        } else if (value instanceof Number) {
            writeNumber((Number) value, out);
        } else if (value instanceof Map) {
            writeMap((Map<?, ?>) value, out, depth);
        } else if (value instanceof java.nio.file.Path) {
            Json.quote(((java.nio.file.Path) value).toUri().toString(), out); // not as its names
        } else if (value instanceof Iterable) {
            out.append('[');
            Iterator<?> it = ((Iterable<?>) value).iterator();
            boolean first = true;
            while (it.hasNext()) {
                if (!first) {
                    out.append(',');
                }
                first = false;
                write(it.next(), out, depth + 1);
            }
            out.append(']');
        } else if (value.getClass().isArray()) {
            writeArray(value, out, depth);
        } else if (value instanceof Character || value instanceof CharSequence) {
            Json.quote(value.toString(), out);
        } else if (value instanceof Enum) {
            Json.quote(((Enum<?>) value).name(), out);
        } else if (value instanceof Optional) {
            Optional<?> optional = (Optional<?>) value;
            write(optional.isPresent() ? optional.get() : null, out, depth + 1);
        } else if (value instanceof Date) {
            out.append(((Date) value).getTime());
        } else if (value instanceof Calendar) {
            out.append(((Calendar) value).getTimeInMillis());
        } else if (value instanceof Class) {
            Json.quote(((Class<?>) value).getName(), out);
        } else if (Scalars.isToStringValue(value.getClass())) {
            Json.quote(value.toString(), out);
        } else {
            Bean.of(value.getClass()).write(value, out, depth);
        }
    }

    private static void writeNumber(Number n, StringBuilder out) {
        if (n instanceof Double || n instanceof Float) {
            double d = n.doubleValue();
            if (Double.isNaN(d) || Double.isInfinite(d)) {
                out.append('"').append(n.toString()).append('"');
                return;
            }
        }
        out.append(n.toString());
    }

    private static void writeMap(Map<?, ?> map, StringBuilder out, int depth) {
        out.append('{');
        boolean first = true;
        for (Map.Entry<?, ?> entry : map.entrySet()) {
            if (!first) {
                out.append(',');
            }
            first = false;
            Object key = entry.getKey();
            Json.quote(key instanceof Enum ? ((Enum<?>) key).name() : String.valueOf(key), out);
            out.append(':');
            write(entry.getValue(), out, depth + 1);
        }
        out.append('}');
    }

    private static void writeArray(Object array, StringBuilder out, int depth) {
        if (array instanceof byte[]) {
            out.append('"').append(Base64.getEncoder().encodeToString((byte[]) array)).append('"');
            return;
        }
        if (array instanceof char[]) {
            Json.quote(new String((char[]) array), out);
            return;
        }
        out.append('[');
        int n = Array.getLength(array);
        for (int i = 0; i < n; i++) {
            if (i > 0) {
                out.append(',');
            }
            write(Array.get(array, i), out, depth + 1);
        }
        out.append(']');
    }
}
