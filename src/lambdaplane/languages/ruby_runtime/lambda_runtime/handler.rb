# frozen_string_literal: true

module LambdaRuntime
  # A function's handler setting, in the two forms AWS documents for Ruby:
  #
  #   "function.handler"                     top-level `handler` of function.rb
  #   "function.Module::Class.process"       `Module::Class.process`, defined by function.rb
  #
  # The method is called as AWS calls it: `handler(event:, context:)`.
  class Handler
    attr_reader :file, :constant, :method_name

    # Raises ArgumentError for a setting in neither form.
    def self.parse(setting)
      parts = setting.to_s.split(".", -1)
      file, constant, method_name = parts.size == 2 ? [parts[0], nil, parts[1]] : parts
      if parts.size < 2 || parts.size > 3 || parts.any?(&:empty?)
        raise ArgumentError, "Invalid handler #{setting.inspect}: expected FILE.METHOD or " \
                             "FILE.CLASS.METHOD, where FILE.rb is in the function's code " \
                             "and CLASS may be namespaced (Module::Class)"
      end

      new(file, constant, method_name)
    end

    def initialize(file, constant, method_name)
      @file = file
      @constant = constant
      @method_name = method_name.to_sym
    end

    # Require the handler's file from task_root (the init phase). Raises what loading
    # raises: LoadError when there is no such file, SyntaxError, or the file's own error.
    def load(task_root)
      path = File.join(task_root, "#{@file}.rb")
      # A missing file is required by name, as AWS does, so LoadError names it the same.
      require(File.file?(path) ? path : @file)
    end

    # Raises NameError when the class or method does not exist, or what the handler raises.
    def call(event, context)
      receiver.__send__(@method_name, event: event, context: context)
    end

    private

    def receiver
      @receiver ||= @constant ? Object.const_get(@constant) : TOPLEVEL_BINDING.receiver
    end
  end
end
