package com.amazonaws.services.lambda.runtime;

/** The Amazon Cognito identity an invocation came with. */
public interface CognitoIdentity {

    String getIdentityId();

    String getIdentityPoolId();
}
