package lambdaplane.runtime;

import com.amazonaws.services.lambda.runtime.Client;
import com.amazonaws.services.lambda.runtime.ClientContext;
import com.amazonaws.services.lambda.runtime.CognitoIdentity;
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/** The Context of one invocation: the /next answer's headers plus the environment's variables. */
final class LambdaContext implements Context {

    /** What does not change between invocations, read once from the environment. */
    static final class Environment {
        final String functionName = System.getenv("AWS_LAMBDA_FUNCTION_NAME");
        final String functionVersion = System.getenv("AWS_LAMBDA_FUNCTION_VERSION");
        final String logGroupName = System.getenv("AWS_LAMBDA_LOG_GROUP_NAME");
        final String logStreamName = System.getenv("AWS_LAMBDA_LOG_STREAM_NAME");
        final int memoryLimitInMB = parseInt(System.getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), 128);
    }

    private final Environment env;
    private final RuntimeApi.Invocation invocation;
    private CognitoIdentity identity;
    private ClientContext clientContext;
    private boolean parsed;

    LambdaContext(Environment env, RuntimeApi.Invocation invocation) {
        this.env = env;
        this.invocation = invocation;
    }

    @Override
    public String getAwsRequestId() {
        return invocation.requestId;
    }

    @Override
    public String getLogGroupName() {
        return env.logGroupName;
    }

    @Override
    public String getLogStreamName() {
        return env.logStreamName;
    }

    @Override
    public String getFunctionName() {
        return env.functionName;
    }

    @Override
    public String getFunctionVersion() {
        return env.functionVersion;
    }

    @Override
    public String getInvokedFunctionArn() {
        return invocation.invokedFunctionArn;
    }

    @Override
    public CognitoIdentity getIdentity() {
        parseHeaders();
        return identity;
    }

    @Override
    public ClientContext getClientContext() {
        parseHeaders();
        return clientContext;
    }

    @Override
    public int getRemainingTimeInMillis() {
        long left = invocation.deadlineMs - System.currentTimeMillis();
        return left > 0 ? (int) Math.min(left, Integer.MAX_VALUE) : 0;
    }

    @Override
    public int getMemoryLimitInMB() {
        return env.memoryLimitInMB;
    }

    @Override
    public LambdaLogger getLogger() {
        return RuntimeLogger.INSTANCE;
    }

    /** The JSON headers are parsed on first use: most handlers never ask. */
    private void parseHeaders() {
        if (parsed) {
            return;
        }
        parsed = true;
        Map<String, Object> cognito = object(invocation.cognitoIdentity);
        if (cognito != null) {
            identity = new Identity(text(cognito, "cognitoIdentityId"), text(cognito, "cognitoIdentityPoolId"));
        }
        Map<String, Object> context = object(invocation.clientContext);
        if (context != null) {
            Map<String, Object> client = asObject(context.get("client"));
            clientContext = new Mobile(
                    client == null ? null : new MobileClient(client),
                    strings(context.get("custom")),
                    strings(context.get("env")));
        }
    }

    private static Map<String, Object> object(String header) {
        if (header == null || header.isEmpty()) {
            return null;
        }
        try {
            return asObject(Json.parse(header));
        } catch (RuntimeException e) {
            return null;
        }
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> asObject(Object node) {
        return node instanceof Map ? (Map<String, Object>) node : null;
    }

    private static String text(Map<String, Object> map, String key) {
        Object value = map.get(key);
        return value == null ? null : String.valueOf(value);
    }

    private static Map<String, String> strings(Object node) {
        Map<String, Object> map = asObject(node);
        if (map == null) {
            return null;
        }
        Map<String, String> result = new LinkedHashMap<String, String>();
        for (Map.Entry<String, Object> entry : map.entrySet()) {
            Object value = entry.getValue();
            if (value == null || value instanceof String) {
                result.put(entry.getKey(), (String) value);
            } else {
                StringBuilder json = new StringBuilder();
                JsonWriter.write(value, json);
                result.put(entry.getKey(), json.toString());
            }
        }
        return Collections.unmodifiableMap(result);
    }

    static int parseInt(String s, int fallback) {
        try {
            return s == null ? fallback : Integer.parseInt(s.trim());
        } catch (NumberFormatException e) {
            return fallback;
        }
    }

    private static final class Identity implements CognitoIdentity {
        private final String id;
        private final String poolId;

        Identity(String id, String poolId) {
            this.id = id;
            this.poolId = poolId;
        }

        @Override
        public String getIdentityId() {
            return id;
        }

        @Override
        public String getIdentityPoolId() {
            return poolId;
        }
    }

    private static final class Mobile implements ClientContext {
        private final Client client;
        private final Map<String, String> custom;
        private final Map<String, String> environment;

        Mobile(Client client, Map<String, String> custom, Map<String, String> environment) {
            this.client = client;
            this.custom = custom;
            this.environment = environment;
        }

        @Override
        public Client getClient() {
            return client;
        }

        @Override
        public Map<String, String> getCustom() {
            return custom;
        }

        @Override
        public Map<String, String> getEnvironment() {
            return environment;
        }
    }

    private static final class MobileClient implements Client {
        private final Map<String, Object> fields;

        MobileClient(Map<String, Object> fields) {
            this.fields = fields;
        }

        @Override
        public String getInstallationId() {
            return text(fields, "installation_id");
        }

        @Override
        public String getAppTitle() {
            return text(fields, "app_title");
        }

        @Override
        public String getAppVersionName() {
            return text(fields, "app_version_name");
        }

        @Override
        public String getAppVersionCode() {
            return text(fields, "app_version_code");
        }

        @Override
        public String getAppPackageName() {
            return text(fields, "app_package_name");
        }
    }
}
