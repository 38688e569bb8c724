package lambdaplane.runtime;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import com.amazonaws.services.lambda.runtime.RequestStreamHandler;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.reflect.Constructor;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.lang.reflect.TypeVariable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Resolves a handler string ("package.Class::method" or "package.Class") into a Handler during
 * the init phase, with AWS's rules and wording:
 *
 * <ul>
 *   <li>"package.Class" must implement RequestStreamHandler or RequestHandler (with concrete type
 *       arguments: the event is read into the first);
 *   <li>"::method" picks among the class's public methods of that name: non-bridge before bridge,
 *       then the longest signature, a trailing Context counting one extra; the first overload
 *       whose parameters fit a stream or POJO shape wins;
 *   <li>the class is instantiated once, here (a static method needs no instance).
 * </ul>
 *
 * Faults that AWS reports at invocation (class not found, no fitting method, no zero-argument
 * constructor) come back as a Handler.Faulty; those AWS reports as init errors (the class's
 * static initialiser or constructor threw) are thrown as a fatal UserFault.
 */
final class HandlerLoader {

    private HandlerLoader() {}

    static Handler load(String handler, ClassLoader loader) {
        int colon = handler.lastIndexOf("::");
        String className = colon < 0 ? handler : handler.substring(0, colon);
        String methodName = colon < 0 ? null : handler.substring(colon + 2);
        if (className.isEmpty() || (methodName != null && methodName.isEmpty())) {
            return new Handler.Faulty(UserFault.of("Invalid handler: `" + handler + "'"));
        }
        Class<?> c;
        try {
            c = Class.forName(className, true, loader);
        } catch (ClassNotFoundException e) {
            return new Handler.Faulty(new UserFault("Class not found: " + className,
                    e.getClass().getName(), ErrorReport.printed(e), false));
        } catch (NoClassDefFoundError e) {
            return new Handler.Faulty(loadingFault(e, className));
        } catch (Throwable t) {
            throw loadingFault(t, className);
        }
        try {
            return methodName == null ? forClass(c) : forMethod(c, methodName);
        } catch (UserFault fault) {
            if (fault.fatal) {
                throw fault;
            }
            return new Handler.Faulty(fault);
        }
    }

    private static UserFault loadingFault(Throwable t, String className) {
        String message = t.getMessage();
        return new UserFault("Error loading class " + className + (message == null ? "" : ": " + message),
                t.getClass().getName(), ErrorReport.printed(t), true);
    }

    // -- "package.Class" --------------------------------------------------------------------

    private static Handler forClass(Class<?> c) {
        if (RequestStreamHandler.class.isAssignableFrom(c)) {
            return new Handler.Stream((RequestStreamHandler) instantiate(c));
        }
        if (!RequestHandler.class.isAssignableFrom(c)) {
            throw UserFault.of("Class does not implement an appropriate handler interface: " + c.getName());
        }
        Type[] types = requestHandlerTypes(c, null);
        if (types == null) {
            throw UserFault.of("Class " + c.getName()
                    + " does not implement RequestHandler with concrete type parameters");
        }
        for (Type t : types) {
            if (t instanceof TypeVariable && !hasBound((TypeVariable<?>) t)) {
                throw UserFault.of("Class " + c.getName()
                        + " does not implement RequestHandler with concrete type parameters: parameter "
                        + t + " has no upper bound.");
            }
        }
        Object instance = instantiate(c);
        return new Handler.Pojo((RequestHandler<?, ?>) instance, types[0], isVoid(types[1]));
    }

    /** RequestHandler's type arguments as {@code type} binds them; null if it never does. */
    private static Type[] requestHandlerTypes(Type type, Map<String, Type> outer) {
        Class<?> raw = JsonMapper.rawClass(type);
        Map<String, Type> bindings = new HashMap<String, Type>();
        if (type instanceof ParameterizedType) {
            Type[] args = ((ParameterizedType) type).getActualTypeArguments();
            TypeVariable<?>[] variables = raw.getTypeParameters();
            for (int i = 0; i < args.length && i < variables.length; i++) {
                bindings.put(variables[i].getName(), bind(args[i], outer));
            }
        }
        for (Type iface : raw.getGenericInterfaces()) {
            if (iface instanceof ParameterizedType && ((ParameterizedType) iface).getRawType() == RequestHandler.class) {
                Type[] args = ((ParameterizedType) iface).getActualTypeArguments();
                Type[] bound = new Type[args.length];
                for (int i = 0; i < args.length; i++) {
                    bound[i] = bind(args[i], bindings);
                }
                return bound;
            }
        }
        for (Type iface : raw.getGenericInterfaces()) {
            if (RequestHandler.class.isAssignableFrom(JsonMapper.rawClass(iface))) {
                Type[] found = requestHandlerTypes(iface, bindings);
                if (found != null) {
                    return found;
                }
            }
        }
        Type superclass = raw.getGenericSuperclass();
        if (superclass != null && RequestHandler.class.isAssignableFrom(JsonMapper.rawClass(superclass))) {
            return requestHandlerTypes(superclass, bindings);
        }
        return null;
    }

    private static Type bind(Type t, Map<String, Type> bindings) {
        if (t instanceof TypeVariable && bindings != null) {
            Type bound = bindings.get(((TypeVariable<?>) t).getName());
            return bound != null ? bound : t;
        }
        return t;
    }

    private static boolean hasBound(TypeVariable<?> variable) {
        for (Type bound : variable.getBounds()) {
            if (bound != Object.class) {
                return true;
            }
        }
        return false;
    }

    private static boolean isVoid(Type t) {
        return t == void.class || t == Void.class;
    }

    // -- "package.Class::method" ------------------------------------------------------------

    private static final Comparator<Method> PRIORITY = new Comparator<Method>() {
        @Override
        public int compare(Method a, Method b) {
            if (a.isBridge() != b.isBridge()) {
                return a.isBridge() ? 1 : -1;
            }
            return Integer.compare(weight(b), weight(a));
        }
    };

    private static int weight(Method m) {
        Class<?>[] params = m.getParameterTypes();
        return params.length + (params.length > 0 && params[params.length - 1] == Context.class ? 1 : 0);
    }

    private static Handler forMethod(Class<?> c, String name) {
        Method[] all;
        try {
            all = c.getMethods();
        } catch (NoClassDefFoundError e) {
            throw new UserFault("Error loading method " + name + " on class " + c.getName(),
                    e.getClass().getName(), ErrorReport.printed(e), false);
        }
        List<Method> candidates = new ArrayList<Method>();
        for (Method m : all) {
            if (m.getName().equals(name)) {
                candidates.add(m);
            }
        }
        Method[] sorted = candidates.toArray(new Method[0]);
        Arrays.sort(sorted, PRIORITY);
        for (Method m : sorted) {
            Handler handler = forOverload(c, m);
            if (handler != null) {
                return handler;
            }
        }
        throw UserFault.of("No public method named " + name
                + " with appropriate method signature found on class " + c.getName());
    }

    /** The handler for one overload, or null (with the reason on stderr) if its signature does not fit. */
    private static Handler forOverload(Class<?> c, Method m) {
        Type[] params = m.getGenericParameterTypes();
        Class<?>[] raw = m.getParameterTypes();
        switch (params.length) {
            case 0:
                return new Handler.Pojo(m, target(c, m), null, false);
            case 1:
                if (raw[0] == InputStream.class) {
                    return new Handler.Stream(m, target(c, m), true, false, false);
                }
                if (raw[0] == OutputStream.class) {
                    return new Handler.Stream(m, target(c, m), false, true, false);
                }
                if (raw[0] == Context.class) {
                    return new Handler.Pojo(m, target(c, m), null, true);
                }
                return new Handler.Pojo(m, target(c, m), params[0], false);
            case 2:
                if (raw[0] == OutputStream.class && raw[1] == Context.class) {
                    return new Handler.Stream(m, target(c, m), false, true, true);
                }
                if (raw[0] == InputStream.class && raw[1] == OutputStream.class) {
                    return new Handler.Stream(m, target(c, m), true, true, false);
                }
                if (raw[0] == InputStream.class && raw[1] == Context.class) {
                    return new Handler.Stream(m, target(c, m), true, false, true);
                }
                if (raw[0] != Context.class && raw[0] != InputStream.class && raw[0] != OutputStream.class
                        && raw[1] == Context.class) {
                    return new Handler.Pojo(m, target(c, m), params[0], true);
                }
                System.err.println("Ignoring two-argument overload of " + m.getName()
                        + ": its parameters are not (Input, Context), (InputStream, OutputStream),"
                        + " (InputStream, Context) or (OutputStream, Context)");
                return null;
            case 3:
                if (raw[0] == InputStream.class && raw[1] == OutputStream.class && raw[2] == Context.class) {
                    return new Handler.Stream(m, target(c, m), true, true, true);
                }
                System.err.println("Ignoring three-argument overload because argument signature is not"
                        + " (InputStream, OutputStream, Context");
                return null;
            default:
                System.err.println("Ignoring an overload of method " + m.getName()
                        + " because it has too many parameters: Expected at most 3, got " + params.length);
                return null;
        }
    }

    private static Object target(Class<?> c, Method m) {
        return Modifier.isStatic(m.getModifiers()) ? null : instantiate(c);
    }

    /**
     * One instance by the public zero-argument constructor. A constructor that throws is a fatal
     * fault (an init error); a class without such a constructor is a fault AWS reports per invoke.
     */
    private static Object instantiate(Class<?> c) {
        Constructor<?> constructor;
        try {
            constructor = c.getConstructor();
        } catch (NoSuchMethodException e) {
            Exception reason = c.getEnclosingClass() != null && !Modifier.isStatic(c.getModifiers())
                    ? new Exception("Class " + c.getName()
                            + " cannot be instantiated because it is a non-static inner class")
                    : new Exception("Class " + c.getName() + " has no public zero-argument constructor", e);
            throw UserFault.of(reason, false);
        }
        try {
            return constructor.newInstance();
        } catch (InvocationTargetException e) {
            throw UserFault.of(e.getCause() != null ? e.getCause() : e, true);
        } catch (ReflectiveOperationException e) {
            throw UserFault.of(e, false);
        }
    }
}
