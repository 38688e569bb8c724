# frozen_string_literal: true

# lambdaplane's runtime interface client for Ruby: the process the agent starts for a
# rubyX.Y function, as `ruby --disable-gems /var/runtime/bootstrap.rb` (RubyGems loads
# on first need: lambda_runtime/lazy_gems.rb).
#
# Init: parse _HANDLER and require the function's file. A failure is logged, posted to
# /init/error as "Init<Class>", and ends the process, as on AWS.
#
# Then, for each invocation: /next, the handler, and /response with
# JSON.generate(result), or /error with "Function<Class>". A StandardError leaves the
# runtime serving; a NameError (which is what a missing handler method or class
# raises) or an exception outside StandardError is critical: it is posted the same
# way, and then the process exits, so the next invocation starts cold, as on AWS.

$stdout.sync = true
$stderr.sync = true

# RUBYLIB puts the function's directories (/var/task, /opt/ruby/lib) first on the load
# path; the runtime's own requires must not resolve to the function's files.
function_dirs = ENV.fetch("RUBYLIB", "").split(File::PATH_SEPARATOR)
load_path = $LOAD_PATH.dup
$LOAD_PATH.reject! { |dir| function_dirs.include?(dir) }
require_relative "lambda_runtime/lazy_gems"
require_relative "lambda_runtime/context"
require_relative "lambda_runtime/errors"
require_relative "lambda_runtime/handler"
require_relative "lambda_runtime/log_format"
require_relative "lambda_runtime/runtime_api"
$LOAD_PATH.replace(load_path)

module LambdaRuntime
  # The init phase, then the invocation loop; see the top of this file.
  class Bootstrap
    def initialize(api, env = ENV)
      @api = api
      @env = env
    end

    def run
      handler = init
      loop do
        headers, body = @api.next_invocation
        serve(handler, headers, body)
      end
    end

    private

    def init
      handler = Handler.parse(@env["_HANDLER"])
      handler.load(@env.fetch("LAMBDA_TASK_ROOT", "/var/task"))
      handler
    rescue Exception => e # rubocop:disable Lint/RescueException -- any failure fails init
      report = ErrorReport.new(e, "Init")
      report.log("Init error when loading handler")
      @api.post_init_error(report)
      exit(1)
    end

    def serve(handler, headers, body)
      request_id = headers["lambda-runtime-aws-request-id"]
      LambdaRuntime.request_id = request_id
      if (trace = headers["lambda-runtime-trace-id"])
        @env["_X_AMZN_TRACE_ID"] = trace
      else
        @env.delete("_X_AMZN_TRACE_ID")
      end
      begin
        result = handler.call(JSON.parse(body), LambdaContext.new(headers, @env))
        @api.post_response(request_id, JSON.generate(result))
      rescue NameError => e
        critical(request_id, e)
      rescue StandardError => e
        report = ErrorReport.new(e, "Function")
        report.log("Error raised from handler method")
        @api.post_error(request_id, report)
      rescue Exception => e # rubocop:disable Lint/RescueException -- critical, see above
        critical(request_id, e)
      end
    end

    def critical(request_id, exception)
      report = ErrorReport.new(exception, "Function")
      report.log("Critical exception from handler")
      @api.post_error(request_id, report)
      exit(1)
    end
  end
end

LambdaRuntime::Bootstrap.new(LambdaRuntime::RuntimeAPI.new(ENV.fetch("AWS_LAMBDA_RUNTIME_API"))).run
