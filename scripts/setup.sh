# Sourced by scripts/serve and scripts/test: make .venv ready, installing only what is missing.
# Usage: setup_env [extra]   (extra = "test" also installs the test dependencies)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
# Debian packages the platform needs at run time: bubblewrap builds the sandboxes;
# the language runtimes it offers use the host's interpreters (Node.js, a JDK, Ruby).
APT_PACKAGES=(bubblewrap ruby)
# Only the tests need these: Go builds a custom-runtime bootstrap, as AWS users do;
# ActiveMQ is the broker of the Amazon MQ event source tests (they start their own);
# Chromium is the real browser of the function URL CORS test; wrk drives the benchmarks.
TEST_APT_PACKAGES=(golang-go activemq chromium wrk)

_as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

_apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    _as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive _as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

_find_python() {
  local candidate
  for candidate in python3 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}

setup_env() {
  local extra="${1:-}"
  local python
  if ! python="$(_find_python)"; then
    _apt_install python3 python3-venv
    python="$(_find_python)" || { echo "setup: need Python >= 3.11" >&2; exit 1; }
  fi
  if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    local minor; minor="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    _apt_install "python${minor}-venv"
  fi
  if [ "${#APT_PACKAGES[@]}" -gt 0 ]; then _apt_install "${APT_PACKAGES[@]}"; fi
  if [ "$extra" = "test" ]; then _apt_install "${TEST_APT_PACKAGES[@]}"; fi
  if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV" >&2
    "$python" -m venv "$VENV"
  fi
  local target=".${extra:+[$extra]}"
  local stamp="$VENV/.lambdaplane-installed${extra:+-$extra}"
  local want; want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: installing lambdaplane${extra:+ with $extra dependencies} into .venv" >&2
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
    (cd "$ROOT" && "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$target")
    echo "$want" > "$stamp"
  fi
  # Each host Python's /var/runtime (awslambdaric + boto3); quick when already there.
  "$VENV/bin/lambdaplane" install-runtimes >&2
}
