package lambdaplane.runtime;

import java.lang.reflect.Array;
import java.lang.reflect.GenericArrayType;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.lang.reflect.WildcardType;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.NavigableSet;
import java.util.Optional;
import java.util.Queue;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Events into handler types, with the rules of AWS's Java serialization (Jackson as
 * aws-lambda-java-serialization configures it): a POJO's properties are its public setters and
 * public fields, named the standard bean way ({@code setURL} is "URL", {@code setName} is
 * "name"); names match exactly; unknown properties are ignored; a lone value is accepted where
 * a list is expected, and a one-element list where a lone value is. {@link JsonWriter} goes the
 * other way.
 */
public final class JsonMapper {

    private JsonMapper() {}

    /** Thrown when an event does not fit the handler's input type, or a result cannot be written. */
    public static final class MappingException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        MappingException(String message) {
            super(message);
        }

        MappingException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    // -- JSON tree -> Java ------------------------------------------------------------------

    /** The tree ({@link Json#parse}) as an instance of {@code type}; MappingException if it does not fit. */
    public static Object read(Object node, Type type) {
        return convert(node, type, null);
    }

    private static Object convert(Object node, Type type, Map<String, Type> bindings) {
        if (type instanceof Class) {
            return toClass(node, (Class<?>) type, null, bindings);
        }
        if (type instanceof ParameterizedType) {
            ParameterizedType pt = (ParameterizedType) type;
            Type[] args = pt.getActualTypeArguments();
            for (int i = 0; i < args.length; i++) {
                args[i] = resolve(args[i], bindings);
            }
            return toClass(node, (Class<?>) pt.getRawType(), args, bindings);
        }
        if (type instanceof GenericArrayType) {
            Type component = resolve(((GenericArrayType) type).getGenericComponentType(), bindings);
            return toArray(node, rawClass(component), component, bindings);
        }
        return convert(node, resolve(type, bindings), bindings);
    }

    /** A type variable by its binding, else by its bound; a wildcard by its upper bound. */
    static Type resolve(Type type, Map<String, Type> bindings) {
        if (type instanceof TypeVariable) {
            TypeVariable<?> variable = (TypeVariable<?>) type;
            Type bound = bindings == null ? null : bindings.get(variable.getName());
            return bound != null ? bound : resolve(variable.getBounds()[0], null);
        }
        if (type instanceof WildcardType) {
            return resolve(((WildcardType) type).getUpperBounds()[0], bindings);
        }
        return type;
    }

    static Class<?> rawClass(Type type) {
        if (type instanceof Class) {
            return (Class<?>) type;
        }
        if (type instanceof ParameterizedType) {
            return (Class<?>) ((ParameterizedType) type).getRawType();
        }
        if (type instanceof GenericArrayType) {
            Class<?> component = rawClass(((GenericArrayType) type).getGenericComponentType());
            return Array.newInstance(component, 0).getClass();
        }
        return rawClass(resolve(type, null));
    }

    private static Object toClass(Object node, Class<?> c, Type[] args, Map<String, Type> outer) {
        if (c == Object.class) {
            return node;
        }
        if (node == null) {
            return c.isPrimitive() ? Scalars.zero(c) : (c == Optional.class ? Optional.empty() : null);
        }
        if (c == String.class) {
            return Scalars.string(unwrapSingle(node, c));
        }
        if (c.isPrimitive() || Scalars.isScalar(c)) {
            return Scalars.convert(unwrapSingle(node, c), c);
        }
        if (c.isEnum()) {
            return toEnum(unwrapSingle(node, c), c);
        }
        if (c == Optional.class) {
            return Optional.ofNullable(convert(node, typeArgument(args, 0), outer));
        }
        if (Map.class.isAssignableFrom(c)) {
            return toMap(node, c, typeArgument(args, 0), typeArgument(args, 1), outer);
        }
        if (Collection.class.isAssignableFrom(c) || c == Iterable.class) {
            return toCollection(node, c, typeArgument(args, 0), outer);
        }
        if (c.isArray()) {
            return toArray(node, c.getComponentType(), c.getComponentType(), outer);
        }
        if ("".equals(node)) {
            return null; // an empty string stands for a null object
        }
        if (node instanceof List && ((List<?>) node).isEmpty()) {
            return null; // so does an empty array
        }
        if (!(node instanceof Map)) {
            node = unwrapSingle(node, c);
            if (!(node instanceof Map)) {
                throw new MappingException("Cannot deserialize value of type `" + c.getName()
                        + "` from " + describe(node));
            }
        }
        @SuppressWarnings("unchecked")
        Map<String, Object> fields = (Map<String, Object>) node;
        return Bean.of(c).read(fields, bindings(c, args));
    }

    private static Map<String, Type> bindings(Class<?> c, Type[] args) {
        TypeVariable<?>[] variables = c.getTypeParameters();
        if (args == null || variables.length == 0 || variables.length != args.length) {
            return null;
        }
        Map<String, Type> map = new HashMap<String, Type>();
        for (int i = 0; i < variables.length; i++) {
            map.put(variables[i].getName(), args[i]);
        }
        return map;
    }

    static Object convertProperty(Object node, Type type, Map<String, Type> bindings) {
        return convert(node, resolve(type, bindings), bindings);
    }

    private static Type typeArgument(Type[] args, int i) {
        return args != null && i < args.length ? args[i] : Object.class;
    }

    /** A one-element list stands for its element where a single value is expected. */
    private static Object unwrapSingle(Object node, Class<?> c) {
        if (node instanceof List) {
            List<?> list = (List<?>) node;
            if (list.size() == 1) {
                return list.get(0);
            }
            throw new MappingException("Cannot deserialize value of type `" + c.getName()
                    + "` from Array value");
        }
        return node;
    }

    private static Object toEnum(Object node, Class<?> c) {
        Object[] constants = c.getEnumConstants();
        if (node instanceof Integer) {
            int ordinal = (Integer) node;
            return ordinal >= 0 && ordinal < constants.length ? constants[ordinal] : null;
        }
        String name = Scalars.string(node);
        for (Object constant : constants) {
            if (((Enum<?>) constant).name().equals(name)) {
                return constant;
            }
        }
        return null; // unknown names read as null, as AWS's serialization reads them
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static Object toMap(Object node, Class<?> c, Type keyType, Type valueType, Map<String, Type> outer) {
        if ("".equals(node)) {
            return null;
        }
        if (!(node instanceof Map)) {
            throw new MappingException("Cannot deserialize value of type `" + c.getName()
                    + "` from " + describe(node));
        }
        Map result;
        if (c.isInterface() || Modifier.isAbstract(c.getModifiers())) {
            if (c.isAssignableFrom(LinkedHashMap.class)) {
                result = new LinkedHashMap();
            } else if (c.isAssignableFrom(TreeMap.class)) {
                result = new TreeMap();
            } else if (c.isAssignableFrom(ConcurrentHashMap.class)) {
                result = new ConcurrentHashMap();
            } else {
                throw new MappingException("Cannot construct instance of `" + c.getName() + "`");
            }
        } else {
            result = (Map) Bean.instantiate(c);
        }
        Class<?> keyClass = rawClass(resolve(keyType, outer));
        for (Map.Entry<String, Object> entry : ((Map<String, Object>) node).entrySet()) {
            Object key = keyClass == String.class || keyClass == Object.class
                    ? entry.getKey() : toClass(entry.getKey(), keyClass, null, outer);
            result.put(key, convert(entry.getValue(), valueType, outer));
        }
        return result;
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private static Object toCollection(Object node, Class<?> c, Type elementType, Map<String, Type> outer) {
        if ("".equals(node)) {
            return null;
        }
        List<?> items = node instanceof List ? (List<?>) node : java.util.Collections.singletonList(node);
        Collection result;
        if (EnumSet.class.isAssignableFrom(c)) {
            result = EnumSet.noneOf((Class) rawClass(resolve(elementType, outer)));
        } else if (c.isInterface() || Modifier.isAbstract(c.getModifiers())) {
            if (c.isAssignableFrom(ArrayList.class)) {
                result = new ArrayList(items.size());
            } else if (c.isAssignableFrom(HashSet.class)) {
                result = new HashSet();
            } else if (c == SortedSet.class || c == NavigableSet.class) {
                result = new TreeSet();
            } else if (c == Queue.class || c.getName().equals("java.util.Deque")) {
                result = new ArrayDeque();
            } else {
                throw new MappingException("Cannot construct instance of `" + c.getName() + "`");
            }
        } else {
            result = (Collection) Bean.instantiate(c);
        }
        for (Object item : items) {
            result.add(convert(item, elementType, outer));
        }
        return result;
    }

    private static Object toArray(Object node, Class<?> component, Type componentType, Map<String, Type> outer) {
        if (component == byte.class && node instanceof String) {
            try {
                return Base64.getDecoder().decode((String) node);
            } catch (IllegalArgumentException e) {
                throw new MappingException("Cannot deserialize value of type `byte[]` from String: " + e.getMessage());
            }
        }
        if (component == char.class && node instanceof String) {
            return ((String) node).toCharArray();
        }
        List<?> items = node instanceof List ? (List<?>) node : java.util.Collections.singletonList(node);
        Object array = Array.newInstance(component, items.size());
        for (int i = 0; i < items.size(); i++) {
            Array.set(array, i, convert(items.get(i), componentType, outer));
        }
        return array;
    }

    static String describe(Object node) {
        if (node instanceof Map) {
            return "Object value";
        }
        if (node instanceof List) {
            return "Array value";
        }
        if (node instanceof String) {
            return "String value";
        }
        if (node instanceof Boolean) {
            return "Boolean value";
        }
        return "Number value";
    }

    /** The record accessor methods of {@code c} in declaration order, or null if it is no record. */
    static Method[] recordAccessors(Class<?> c) {
        Class<?> superclass = c.getSuperclass();
        if (superclass == null || !superclass.getName().equals("java.lang.Record")) {
            return null;
        }
        try {
            Object[] components = (Object[]) Class.class.getMethod("getRecordComponents").invoke(c);
            Method[] accessors = new Method[components.length];
            for (int i = 0; i < components.length; i++) {
                accessors[i] = (Method) components[i].getClass().getMethod("getAccessor").invoke(components[i]);
            }
            return accessors;
        } catch (ReflectiveOperationException e) {
            return null;
        }
    }

    static BigDecimal decimal(Object node) {
        if (node instanceof BigDecimal) {
            return (BigDecimal) node;
        }
        if (node instanceof Double) {
            return BigDecimal.valueOf((Double) node);
        }
        if (node instanceof BigInteger) {
            return new BigDecimal((BigInteger) node);
        }
        if (node instanceof Number) {
            return BigDecimal.valueOf(((Number) node).longValue());
        }
        return new BigDecimal(Scalars.string(node).trim());
    }
}
