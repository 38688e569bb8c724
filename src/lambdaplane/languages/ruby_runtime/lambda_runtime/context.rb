# frozen_string_literal: true

require "json"

module LambdaRuntime
  # The context object handed to a handler, with the fields AWS documents for Ruby.
  class LambdaContext
    attr_reader :aws_request_id, :invoked_function_arn, :deadline_ms, :function_name,
                :function_version, :memory_limit_in_mb, :log_group_name, :log_stream_name,
                :client_context, :identity, :tenant_id

    # headers: the /next answer's headers (lower-case names); env: the process environment.
    def initialize(headers, env = ENV)
      @aws_request_id = headers["lambda-runtime-aws-request-id"]
      @invoked_function_arn = headers["lambda-runtime-invoked-function-arn"]
      @deadline_ms = headers["lambda-runtime-deadline-ms"].to_i
      @client_context = LambdaContext.parse(headers["lambda-runtime-client-context"])
      @identity = LambdaContext.parse(headers["lambda-runtime-cognito-identity"])
      @tenant_id = headers["lambda-runtime-aws-tenant-id"]
      @function_name = env["AWS_LAMBDA_FUNCTION_NAME"]
      @function_version = env["AWS_LAMBDA_FUNCTION_VERSION"]
      @memory_limit_in_mb = env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
      @log_group_name = env["AWS_LAMBDA_LOG_GROUP_NAME"]
      @log_stream_name = env["AWS_LAMBDA_LOG_STREAM_NAME"]
    end

    # Milliseconds left before the invocation times out (never negative).
    def get_remaining_time_in_millis # rubocop:disable Naming/AccessorMethodName
      [@deadline_ms - Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond), 0].max
    end

    # A JSON header's value as a Hash; nil when absent or not JSON.
    def self.parse(value)
      return nil if value.nil? || value.empty?

      JSON.parse(value)
    rescue JSON::ParserError
      nil
    end
  end
end
