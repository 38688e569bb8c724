# frozen_string_literal: true

# RubyGems, loaded the first time something needs it rather than at start.
#
# A plain `ruby` loads RubyGems before the first line of a script runs: about 25 ms on
# every cold start, most of it reading the default gems' specifications, and most
# functions never activate a gem. So the runtime starts with --disable-gems and loads
# RubyGems on first need:
#
# - a `require` the load path cannot satisfy (a gem under GEM_PATH: the function's
#   vendor/bundle, a layer's ruby/gems) is retried once RubyGems is loaded;
# - the `Gem` constant autoloads it;
# - `Kernel#gem` loads it, then calls the real `gem`.
#
# Once loaded, RubyGems' own `require` (which wraps this one) takes over, and this
# wrapper only ever sees requires that RubyGems already failed to satisfy.
#
# --disable-gems also leaves out did_you_mean and error_highlight, which a plain ruby
# loads. did_you_mean's suggestions are part of exception messages, so it is loaded
# here; error_highlight is not: on Ruby 3.1 it appends source snippets to messages
# (and so to errorMessage), which Ruby 3.2 and later, AWS's Ruby runtimes, no longer do.

require "did_you_mean"

module LambdaRuntime
  # Loads RubyGems on first need; see the top of this file.
  module LazyGems
    # True when this call loaded RubyGems; false when it was loaded already.
    def self.load!
      lambda_runtime_plain_require("rubygems")
    end
  end
end

# Nothing to do when RubyGems is loaded already (RUBYOPT=-rbundler/setup, say): its
# `require` and `gem` must stay as they are.
unless defined?(Gem)
  Object.autoload(:Gem, "rubygems")

  module Kernel
    alias_method :lambda_runtime_plain_require, :require
    private :lambda_runtime_plain_require

    private

    def require(path)
      lambda_runtime_plain_require(path)
    rescue LoadError
      raise unless LambdaRuntime::LazyGems.load!

      require(path)
    end

    # RubyGems replaces this with its own `gem` as it loads.
    def gem(...)
      raise NoMethodError, "undefined method `gem' (RubyGems did not load)" unless LambdaRuntime::LazyGems.load!

      gem(...)
    end
  end
end
