package com.amazonaws.services.lambda.runtime;

/** What a handler can learn about its invocation and its execution environment. */
public interface Context {

    /** The id of this request (the one the caller of Invoke got back). */
    String getAwsRequestId();

    String getLogGroupName();

    String getLogStreamName();

    String getFunctionName();

    String getFunctionVersion();

    /** The ARN the caller invoked: qualified or not, as the caller wrote it. */
    String getInvokedFunctionArn();

    /** The Amazon Cognito identity of the caller; null unless the caller sent one. */
    CognitoIdentity getIdentity();

    /** The client context the caller sent (mobile SDKs); null unless the caller sent one. */
    ClientContext getClientContext();

    /** Milliseconds left before the invocation times out. */
    int getRemainingTimeInMillis();

    int getMemoryLimitInMB();

    LambdaLogger getLogger();
}
