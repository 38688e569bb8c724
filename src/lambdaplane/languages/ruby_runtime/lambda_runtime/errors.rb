# frozen_string_literal: true

require "json"

module LambdaRuntime
  # An exception as Lambda's Ruby runtime reports it.
  #
  # The document is {errorMessage, errorType, stackTrace}, with errorType naming the
  # phase and the class, "Init<LoadError>" or "Function<TypeError>", as AWS documents.
  # The Lambda-Runtime-Function-Error-Type header carries the same name for Ruby's own
  # exception classes and "Function<UserException>" for any other class, as AWS's
  # runtime sends it. Frames of this runtime are left out of stackTrace.
  class ErrorReport
    RUNTIME_DIR = "#{File.expand_path("..", __dir__)}/"

    attr_reader :type, :header

    # phase: "Init" or "Function".
    def initialize(exception, phase)
      @type = "#{phase}<#{exception.class}>"
      @message = ErrorReport.utf8(ErrorReport.message_of(exception))
      frames = exception.backtrace || []
      @trace = frames.reject { |frame| frame.start_with?(RUNTIME_DIR) }.map { |f| ErrorReport.utf8(f) }
      @header = ErrorReport.core_class?(exception.class) ? @type : "Function<UserException>"
    end

    def document
      { "errorMessage" => @message, "errorType" => @type, "stackTrace" => @trace }
    end

    def to_json(*_args)
      JSON.generate(document)
    end

    # Write the document to the log under a title line, as AWS's runtime does.
    def log(title, out = STDOUT)
      out.write("#{title}\n#{JSON.pretty_generate(document)}\n")
    end

    def self.message_of(exception)
      exception.message.to_s
    rescue StandardError => e
      "#{exception.class} (its message raised #{e.class})"
    end

    def self.utf8(text)
      return text if text.encoding == Encoding::UTF_8 && text.valid_encoding?

      text.dup.force_encoding(Encoding::UTF_8).scrub
    end

    # Ruby's own classes (TypeError, Errno::ENOENT) have no source file:
    # const_source_location gives [] for them, [path, line] for any other.
    def self.core_class?(klass)
      name = klass.name
      !name.nil? && Object.const_source_location(name) == []
    rescue NameError
      false
    end
  end
end
