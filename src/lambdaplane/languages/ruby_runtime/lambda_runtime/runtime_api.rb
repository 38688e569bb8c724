# frozen_string_literal: true

require "socket"

module LambdaRuntime
  # A client of the Runtime API 2018-06-01 over one keep-alive HTTP/1.1 connection.
  #
  # Plain sockets rather than net/http: requiring net/http costs ~15 ms of every cold
  # start, and the API needs only four requests whose answers carry a Content-Length.
  # A connection the server closed is reopened once per request.
  class RuntimeAPI
    PREFIX = "/2018-06-01/runtime"
    ERROR_CONTENT_TYPE = "application/vnd.aws.lambda.error+json"

    class Error < StandardError; end

    # One answer: status code, headers (lower-case names) and body (binary).
    Answer = Struct.new(:status, :headers, :body)

    # address: "host:port", as in AWS_LAMBDA_RUNTIME_API.
    def initialize(address)
      host, _, port = address.rpartition(":")
      @host = host.delete_prefix("[").delete_suffix("]")
      @port = Integer(port)
      @host_header = address
      @socket = nil
    end

    # Wait for the next invocation: [headers, event body].
    def next_invocation
      answer = request("GET", "#{PREFIX}/invocation/next")
      raise Error, "/invocation/next answered #{answer.status}: #{answer.body}" unless answer.status == 200

      [answer.headers, answer.body.force_encoding(Encoding::UTF_8)]
    end

    def post_response(request_id, body)
      request("POST", "#{PREFIX}/invocation/#{request_id}/response", body, "application/json")
    end

    # report: an ErrorReport.
    def post_error(request_id, report)
      request("POST", "#{PREFIX}/invocation/#{request_id}/error", report.to_json,
              ERROR_CONTENT_TYPE, report.header)
    end

    def post_init_error(report)
      request("POST", "#{PREFIX}/init/error", report.to_json, ERROR_CONTENT_TYPE, report.header)
    end

    private

    def request(method, path, body = nil, content_type = nil, error_type = nil)
      head = +"#{method} #{path} HTTP/1.1\r\nHost: #{@host_header}\r\n"
      head << "Content-Type: #{content_type}\r\n" if content_type
      head << "Lambda-Runtime-Function-Error-Type: #{error_type}\r\n" if error_type
      head << "Content-Length: #{body.bytesize}\r\n" if body
      head << "\r\n"
      message = body ? head.b << body.b : head.b
      attempts = 0
      begin
        attempts += 1
        socket.write(message)
        read_answer
      rescue EOFError, SystemCallError, IOError
        close
        retry if attempts < 2
        raise
      end
    end

    def socket
      @socket ||= TCPSocket.new(@host, @port).tap do |sock|
        sock.setsockopt(Socket::IPPROTO_TCP, Socket::TCP_NODELAY, 1)
        sock.binmode
      end
    end

    def close
      @socket&.close
    rescue IOError
      nil
    ensure
      @socket = nil
    end

    def read_answer
      status_line = socket.gets("\r\n") or raise EOFError, "connection closed"
      status = Integer(status_line.split(" ", 3)[1])
      headers = {}
      while (line = socket.gets("\r\n")) && line != "\r\n"
        name, value = line.split(":", 2)
        headers[name.downcase] = value.strip
      end
      raise EOFError, "connection closed mid-answer" if line.nil?

      length = headers["content-length"]
      raise Error, "answer without Content-Length" if length.nil?

      body = length.to_i.zero? ? +"" : socket.read(length.to_i)
      raise EOFError, "connection closed mid-body" if body.nil? || body.bytesize < length.to_i

      close if headers["connection"]&.casecmp?("close")
      Answer.new(status, headers, body)
    end
  end
end
