# frozen_string_literal: true

require "logger"

module LambdaRuntime
  # The request in flight, for log lines (empty during init and between invocations).
  @request_id = ""

  class << self
    attr_accessor :request_id
  end

  # Ruby's Logger, formatted as on AWS: a function's `Logger.new($stdout)` writes
  #
  #   [INFO] 2020-01-31T22:12:58.534Z 1c8df7d3-xmpl-46da-9778-518e6eca8125 message
  #
  # (level, UTC time to the millisecond, request id, message), the format AWS's Ruby
  # logging guide shows. A logger given its own formatter keeps it.
  module LogFormat
    def call(severity, time, _progname, msg)
      stamp = time.getutc.strftime("%Y-%m-%dT%H:%M:%S.%LZ")
      "[#{severity}] #{stamp} #{LambdaRuntime.request_id} #{msg2str(msg)}\n"
    end
  end

  Logger::Formatter.prepend(LogFormat)
end
