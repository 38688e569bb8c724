package lambdaplane.runtime;

import java.lang.reflect.AccessibleObject;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.Type;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The JSON properties of one class, found once: what an event may set (public setters, then
 * public fields) and what a result shows (public getters, then public fields), ordered as
 * Jackson orders them: declared fields first (superclass before subclass), then getter-only
 * properties. Records use their components and canonical constructor.
 */
final class Bean {

    /** Classes of AWS's event library match JSON names case-insensitively, as AWS's own mixins make them. */
    private static final String EVENTS_PACKAGE = "com.amazonaws.services.lambda.runtime.events";

    private static final Map<Class<?>, Bean> CACHE = new HashMap<Class<?>, Bean>();

    private final Class<?> type;
    private final Map<String, Property> setters = new HashMap<String, Property>();
    private final Map<String, Property> settersIgnoringCase;
    private final List<Property> getters = new ArrayList<Property>();
    private final Method[] recordAccessors;

    static synchronized Bean of(Class<?> c) {
        Bean bean = CACHE.get(c);
        if (bean == null) {
            bean = new Bean(c);
            CACHE.put(c, bean);
        }
        return bean;
    }

    private Bean(Class<?> c) {
        this.type = c;
        this.recordAccessors = JsonMapper.recordAccessors(c);
        Map<String, Property> readable = new LinkedHashMap<String, Property>();
        for (Field field : declaredFieldsTopDown(c)) {
            readable.put(field.getName(), null); // reserves the field's place in the order
        }
        if (recordAccessors != null) {
            for (Method accessor : recordAccessors) {
                readable.put(accessor.getName(), Property.getter(accessor.getName(), accessor));
            }
        } else {
            for (Method m : publicMethodsTopDown(c)) {
                String name = getterName(m);
                if (name != null && readable.get(name) == null) {
                    readable.put(name, Property.getter(name, m));
                }
                name = setterName(m);
                if (name != null && !setters.containsKey(name)) {
                    setters.put(name, Property.setter(name, m));
                }
            }
            for (Field field : c.getFields()) {
                int mod = field.getModifiers();
                if (Modifier.isStatic(mod) || Modifier.isTransient(mod)) {
                    continue;
                }
                String name = field.getName();
                if (readable.get(name) == null) {
                    readable.put(name, Property.field(name, field));
                }
                if (!setters.containsKey(name)) {
                    setters.put(name, Property.field(name, field));
                }
            }
        }
        for (Property p : readable.values()) {
            if (p != null) {
                getters.add(p);
            }
        }
        Package pkg = c.getPackage();
        if (pkg != null && pkg.getName().startsWith(EVENTS_PACKAGE)) {
            settersIgnoringCase = new HashMap<String, Property>();
            for (Property p : setters.values()) {
                settersIgnoringCase.put(p.name.toLowerCase(Locale.ROOT), p);
            }
        } else {
            settersIgnoringCase = null;
        }
    }

    /** A new instance set from {@code fields}; JsonMapper.MappingException when it cannot be made. */
    Object read(Map<String, Object> fields, Map<String, Type> bindings) {
        if (recordAccessors != null) {
            return readRecord(fields, bindings);
        }
        Object instance = instantiate(type);
        for (Map.Entry<String, Object> entry : fields.entrySet()) {
            Property p = setters.get(entry.getKey());
            if (p == null && settersIgnoringCase != null) {
                p = settersIgnoringCase.get(entry.getKey().toLowerCase(Locale.ROOT));
            }
            if (p == null) {
                continue; // unknown properties are ignored
            }
            Object value;
            try {
                value = JsonMapper.convertProperty(entry.getValue(), p.type, bindings);
            } catch (JsonMapper.MappingException e) {
                throw new JsonMapper.MappingException(e.getMessage() + " (through reference chain: "
                        + type.getName() + "[\"" + p.name + "\"])", e.getCause());
            }
            p.set(instance, value);
        }
        return instance;
    }

    private Object readRecord(Map<String, Object> fields, Map<String, Type> bindings) {
        Class<?>[] types = new Class<?>[recordAccessors.length];
        Object[] args = new Object[recordAccessors.length];
        for (int i = 0; i < recordAccessors.length; i++) {
            Method accessor = recordAccessors[i];
            types[i] = accessor.getReturnType();
            args[i] = JsonMapper.convertProperty(fields.get(accessor.getName()),
                    accessor.getGenericReturnType(), bindings);
        }
        try {
            Constructor<?> canonical = type.getDeclaredConstructor(types);
            accessible(canonical);
            return canonical.newInstance(args);
        } catch (InvocationTargetException e) {
            throw new JsonMapper.MappingException("Cannot construct instance of `" + type.getName()
                    + "`, problem: " + e.getCause().getMessage(), e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new JsonMapper.MappingException("Cannot construct instance of `" + type.getName() + "`", e);
        }
    }

    void write(Object value, StringBuilder out, int depth) {
        out.append('{');
        boolean first = true;
        for (Property p : getters) {
            Object v = p.get(value);
            if (v == null) {
                continue; // null properties are left out, as AWS's serialization leaves them out
            }
            if (!first) {
                out.append(',');
            }
            first = false;
            Json.quote(p.name, out);
            out.append(':');
            JsonWriter.write(v, out, depth + 1);
        }
        out.append('}');
    }

    /** A new instance by the no-argument constructor, whatever its visibility. */
    static Object instantiate(Class<?> c) {
        if (c.isInterface() || Modifier.isAbstract(c.getModifiers())) {
            throw new JsonMapper.MappingException("Cannot construct instance of `" + c.getName()
                    + "` (no Creators, like default constructor, exist): abstract types either need to be"
                    + " mapped to concrete types, have custom deserializer, or contain additional type information");
        }
        try {
            Constructor<?> constructor = c.getDeclaredConstructor();
            accessible(constructor);
            return constructor.newInstance();
        } catch (NoSuchMethodException e) {
            throw new JsonMapper.MappingException("Cannot construct instance of `" + c.getName()
                    + "` (no Creators, like default constructor, exist): cannot deserialize from Object"
                    + " value (no delegate- or property-based Creator)");
        } catch (InvocationTargetException e) {
            throw new JsonMapper.MappingException("Cannot construct instance of `" + c.getName()
                    + "`, problem: " + e.getCause().getMessage(), e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new JsonMapper.MappingException("Cannot construct instance of `" + c.getName() + "`", e);
        }
    }

    static void accessible(AccessibleObject member) {
        try {
            member.setAccessible(true);
        } catch (RuntimeException e) {
            // a JDK class in a closed module: public members still work
        }
    }

    // -- discovery --------------------------------------------------------------------------

    private static List<Class<?>> hierarchyTopDown(Class<?> c) {
        List<Class<?>> classes = new ArrayList<Class<?>>();
        for (Class<?> k = c; k != null && k != Object.class; k = k.getSuperclass()) {
            classes.add(0, k);
        }
        return classes;
    }

    private static List<Field> declaredFieldsTopDown(Class<?> c) {
        List<Field> fields = new ArrayList<Field>();
        for (Class<?> k : hierarchyTopDown(c)) {
            for (Field f : k.getDeclaredFields()) {
                if (!Modifier.isStatic(f.getModifiers()) && !f.isSynthetic()) {
                    fields.add(f);
                }
            }
        }
        return fields;
    }

    /** Public methods, superclass first and in declaration order, then those from interfaces. */
    private static List<Method> publicMethodsTopDown(Class<?> c) {
        List<Method> methods = new ArrayList<Method>();
        for (Class<?> k : hierarchyTopDown(c)) {
            for (Method m : k.getDeclaredMethods()) {
                if (Modifier.isPublic(m.getModifiers())) {
                    methods.add(m);
                }
            }
        }
        for (Method m : c.getMethods()) {
            if (m.isDefault()) {
                methods.add(m);
            }
        }
        return methods;
    }

    private static String getterName(Method m) {
        if (Modifier.isStatic(m.getModifiers()) || m.isBridge() || m.isSynthetic()
                || m.getParameterCount() != 0 || m.getReturnType() == void.class) {
            return null;
        }
        String name = m.getName();
        if (name.startsWith("get") && name.length() > 3 && !name.equals("getClass")) {
            return beanName(name.substring(3));
        }
        if (name.startsWith("is") && name.length() > 2 && m.getReturnType() == boolean.class) {
            return beanName(name.substring(2));
        }
        return null;
    }

    private static String setterName(Method m) {
        String name = m.getName();
        if (Modifier.isStatic(m.getModifiers()) || m.isBridge() || m.isSynthetic()
                || m.getParameterCount() != 1 || !name.startsWith("set") || name.length() <= 3) {
            return null;
        }
        return beanName(name.substring(3));
    }

    /** The standard bean name: "Name" is "name", but "URL" stays "URL". */
    static String beanName(String base) {
        char first = base.charAt(0);
        if (Character.isLowerCase(first)) {
            return base;
        }
        if (base.length() > 1 && Character.isUpperCase(base.charAt(1))) {
            return base;
        }
        return Character.toLowerCase(first) + base.substring(1);
    }

    /** One property: a getter or setter method, or a field. */
    static final class Property {
        final String name;
        final Method method;
        final Field field;
        final Type type;

        private Property(String name, Method method, Field field, Type type) {
            this.name = name;
            this.method = method;
            this.field = field;
            this.type = type;
            accessible(method != null ? method : field);
        }

        static Property getter(String name, Method m) {
            return new Property(name, m, null, m.getGenericReturnType());
        }

        static Property setter(String name, Method m) {
            return new Property(name, m, null, m.getGenericParameterTypes()[0]);
        }

        static Property field(String name, Field f) {
            return new Property(name, null, f, f.getGenericType());
        }

        Object get(Object target) {
            try {
                return method != null ? method.invoke(target) : field.get(target);
            } catch (InvocationTargetException e) {
                throw new JsonMapper.MappingException(e.getCause().toString(), e.getCause());
            } catch (IllegalAccessException e) {
                throw new JsonMapper.MappingException(e.toString(), e);
            }
        }

        void set(Object target, Object value) {
            try {
                if (method != null) {
                    method.invoke(target, value);
                } else {
                    field.set(target, value);
                }
            } catch (InvocationTargetException e) {
                throw new JsonMapper.MappingException(e.getCause().toString(), e.getCause());
            } catch (IllegalAccessException | IllegalArgumentException e) {
                throw new JsonMapper.MappingException(e.toString(), e);
            }
        }
    }
}
