"""A real ActiveMQ broker (Debian's ``activemq`` package) on loopback, for the Amazon MQ
event source tests: an instance of its own (config, data and logs in a temporary
folder), STOMP only, on a free port, with users for the simple authentication plugin."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from lambdaplane.testing.server import free_port

ACTIVEMQ_HOME = Path(os.environ.get("ACTIVEMQ_HOME", "/usr/share/activemq"))

_CONFIG = """<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans
    http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
    http://activemq.apache.org/schema/core
    http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="lambdaplane-test"
      useJmx="false" persistent="false" advisorySupport="false" schedulerSupport="false"
      dataDirectory={data}>
    <plugins>
      <simpleAuthenticationPlugin>
        <users>
{users}
        </users>
      </simpleAuthenticationPlugin>
    </plugins>
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:{port}"/>
    </transportConnectors>
  </broker>
</beans>
"""


def activemq_available() -> bool:
    """Whether Debian's activemq (and a Java to run it) is installed here."""
    return (ACTIVEMQ_HOME / "bin" / "activemq.jar").is_file() and shutil.which("java") is not None


@dataclass
class ActiveMqBroker:
    """A running broker; ``url`` is its STOMP address (``stomp://127.0.0.1:PORT``)."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_activemq(
    base: Path, users: dict[str, str], timeout: float = 60, heap_mb: int = 256
) -> ActiveMqBroker:
    """Start a broker instance in ``base`` with these ``username: password`` users, and
    wait until its STOMP port answers."""
    if not activemq_available():
        raise RuntimeError("ActiveMQ is not installed: scripts/setup.sh installs it for tests")
    base.mkdir(parents=True, exist_ok=True)
    (base / "tmp").mkdir(exist_ok=True)
    port = free_port()
    entries = "\n".join(
        f"          <authenticationUser username={quoteattr(user)} "
        f'password={quoteattr(password)} groups="users"/>'
        for user, password in users.items()
    )
    config = base / "activemq.xml"
    config.write_text(_CONFIG.format(data=quoteattr(str(base / "data")), users=entries, port=port))
    log = base / "activemq.log"
    command = [
        shutil.which("java") or "java",
        "-Xms64m",
        f"-Xmx{heap_mb}m",
        "-Djava.awt.headless=true",
        f"-Djava.io.tmpdir={base / 'tmp'}",
        f"-Dactivemq.home={ACTIVEMQ_HOME}",
        f"-Dactivemq.base={base}",
        f"-Dactivemq.conf={base}",
        f"-Dactivemq.data={base / 'data'}",
        "-jar",
        str(ACTIVEMQ_HOME / "bin" / "activemq.jar"),
        "start",
        f"xbean:file:{config}",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=base
        )
    broker = ActiveMqBroker(f"stomp://127.0.0.1:{port}", port, process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ActiveMQ exited with {process.returncode}:\n{broker.tail()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return broker
        except OSError:
            time.sleep(0.2)
    broker.stop()
    raise RuntimeError(f"ActiveMQ did not listen on {port} within {timeout} s:\n{broker.tail()}")
