package lambdaplane.runtime;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.List;
import java.util.Map;

/**
 * JSON scalars into Java scalars, with Jackson's coercions: numbers from strings, strings from
 * numbers and booleans, integers from floats (truncated), zero for null where a primitive is
 * expected. JDK value types (UUID, URI, java.time, ...) are read from and written as strings.
 */
final class Scalars {

    private Scalars() {}

    static boolean isScalar(Class<?> c) {
        return c == Integer.class || c == Long.class || c == Double.class || c == Boolean.class
                || c == Float.class || c == Short.class || c == Byte.class || c == Character.class
                || c == BigDecimal.class || c == BigInteger.class || c == Number.class
                || isToStringValue(c);
    }

    /** JDK value types that Jackson writes as their string form and reads from it. */
    static boolean isToStringValue(Class<?> c) {
        String name = c.getName();
        return name.startsWith("java.") && (name.startsWith("java.time.") || TO_STRING_VALUES.contains(name));
    }

    /** By name: comparing Class objects would load every one of them at the first event. */
    private static final java.util.Set<String> TO_STRING_VALUES = new java.util.HashSet<String>(java.util.Arrays.asList(
            "java.util.UUID", "java.net.URI", "java.net.URL", "java.util.Locale", "java.io.File",
            "java.util.Currency", "java.util.regex.Pattern", "java.nio.charset.Charset", "java.util.TimeZone"));

    static Object zero(Class<?> c) {
        if (c == boolean.class) {
            return Boolean.FALSE;
        }
        if (c == char.class) {
            return Character.valueOf('\0');
        }
        return convert(Integer.valueOf(0), c);
    }

    /** A scalar as a string; JsonMapper.MappingException for objects and arrays. */
    static String string(Object node) {
        if (node instanceof String) {
            return (String) node;
        }
        if (node instanceof Map || node instanceof List) {
            throw new JsonMapper.MappingException(
                    "Cannot deserialize value of type `java.lang.String` from " + JsonMapper.describe(node));
        }
        return String.valueOf(node);
    }

    static Object convert(Object node, Class<?> c) {
        if (c == boolean.class || c == Boolean.class) {
            if (node instanceof Boolean) {
                return node;
            }
            if (node instanceof Number) {
                return ((Number) node).longValue() != 0;
            }
            String s = string(node).trim();
            if (s.equalsIgnoreCase("true")) {
                return Boolean.TRUE;
            }
            if (s.equalsIgnoreCase("false") || s.isEmpty()) {
                return c == Boolean.class && s.isEmpty() ? null : Boolean.FALSE;
            }
            throw invalid(node, c);
        }
        if (c == char.class || c == Character.class) {
            if (node instanceof Integer) {
                return Character.valueOf((char) ((Integer) node).intValue());
            }
            String s = string(node);
            if (s.length() == 1) {
                return Character.valueOf(s.charAt(0));
            }
            throw invalid(node, c);
        }
        if (isToStringValue(c)) {
            return fromString(string(node), c);
        }
        if (node instanceof Boolean) {
            throw new JsonMapper.MappingException("Cannot deserialize value of type `" + c.getName()
                    + "` from Boolean value");
        }
        if (node instanceof String && ((String) node).trim().isEmpty()) {
            return c.isPrimitive() ? zero(c) : null;
        }
        if (c == BigDecimal.class) {
            return JsonMapper.decimal(node);
        }
        if (c == double.class || c == Double.class) {
            return node instanceof Number ? ((Number) node).doubleValue() : parseDouble(node, c);
        }
        if (c == float.class || c == Float.class) {
            return node instanceof Number ? ((Number) node).floatValue() : (float) parseDouble(node, c);
        }
        BigInteger integer;
        if (node instanceof BigInteger) {
            integer = (BigInteger) node;
        } else if (node instanceof Number) {
            Number n = (Number) node;
            integer = node instanceof Double ? BigDecimal.valueOf(n.doubleValue()).toBigInteger()
                    : BigInteger.valueOf(n.longValue());
        } else {
            try {
                integer = new BigDecimal(string(node).trim()).toBigInteger();
            } catch (NumberFormatException e) {
                throw invalid(node, c);
            }
        }
        if (c == BigInteger.class) {
            return integer;
        }
        if (c == Number.class) {
            return node instanceof Number ? node : integer;
        }
        if (c == long.class || c == Long.class) {
            return Long.valueOf(inRange(integer, Long.MIN_VALUE, Long.MAX_VALUE, c));
        }
        if (c == int.class || c == Integer.class) {
            return Integer.valueOf((int) inRange(integer, Integer.MIN_VALUE, Integer.MAX_VALUE, c));
        }
        if (c == short.class || c == Short.class) {
            return Short.valueOf((short) inRange(integer, Short.MIN_VALUE, Short.MAX_VALUE, c));
        }
        if (c == byte.class || c == Byte.class) {
            return Byte.valueOf((byte) inRange(integer, Byte.MIN_VALUE, 255, c));
        }
        throw invalid(node, c);
    }

    private static long inRange(BigInteger value, long min, long max, Class<?> c) {
        if (value.bitLength() > 63 || value.longValue() < min || value.longValue() > max) {
            throw new JsonMapper.MappingException("Numeric value (" + value + ") out of range of "
                    + c.getSimpleName());
        }
        return value.longValue();
    }

    private static double parseDouble(Object node, Class<?> c) {
        try {
            return Double.parseDouble(string(node).trim());
        } catch (NumberFormatException e) {
            throw invalid(node, c);
        }
    }

    private static JsonMapper.MappingException invalid(Object node, Class<?> c) {
        return new JsonMapper.MappingException("Cannot deserialize value of type `" + c.getName()
                + "` from " + JsonMapper.describe(node) + " \"" + node + "\": not a valid `"
                + c.getName() + "` value");
    }

    /** A JDK value type from its string form: parse, valueOf, forName, of, or a String constructor. */
    private static Object fromString(String s, Class<?> c) {
        try {
            if (c == java.net.URL.class) {
                return java.net.URI.create(s).toURL();
            }
            if (c == java.util.Locale.class) {
                return java.util.Locale.forLanguageTag(s.replace('_', '-'));
            }
            if (c == java.io.File.class) {
                return new java.io.File(s);
            }
            if (c == java.util.regex.Pattern.class) {
                return java.util.regex.Pattern.compile(s);
            }
            if (c == java.util.TimeZone.class) {
                return java.util.TimeZone.getTimeZone(s);
            }
            String[] factories = {"parse", "fromString", "valueOf", "forName", "of", "create", "getInstance"};
            for (String factory : factories) {
                Method m = factoryMethod(c, factory);
                if (m != null) {
                    return m.invoke(null, s);
                }
            }
            return c.getConstructor(String.class).newInstance(s);
        } catch (Exception e) {
            Throwable cause = e instanceof java.lang.reflect.InvocationTargetException ? e.getCause() : e;
            throw new JsonMapper.MappingException("Cannot deserialize value of type `" + c.getName()
                    + "` from String \"" + s + "\": " + cause.getMessage(), cause);
        }
    }

    private static Method factoryMethod(Class<?> c, String name) {
        for (Method m : c.getMethods()) {
            Class<?>[] params = m.getParameterTypes();
            if (m.getName().equals(name) && Modifier.isStatic(m.getModifiers()) && params.length == 1
                    && (params[0] == String.class || params[0] == CharSequence.class)
                    && c.isAssignableFrom(m.getReturnType())) {
                return m;
            }
        }
        return null;
    }
}
