# Sourced by scripts/run and scripts/test: installs what they need, each tool only when it is
# missing or at another version, so running it again is cheap. Pinned versions: see
# docs/TOOLCHAIN notes in the README.

GATEHOUSE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARGO_LEPTOS_VERSION="0.3.10"
# The CLI must equal the wasm-bindgen crate in Cargo.lock (pinned in Cargo.toml).
WASM_BINDGEN_VERSION="$(sed -n '/^name = "wasm-bindgen"$/{n;s/^version = "\(.*\)"$/\1/p;}' "$GATEHOUSE_ROOT/Cargo.lock")"
TARGET_DIR="${CARGO_TARGET_DIR:-$GATEHOUSE_ROOT/target}"
# cargo-leptos writes the site under the workspace, whatever CARGO_TARGET_DIR says.
SITE_ROOT="$GATEHOUSE_ROOT/target/site"
export PATH="$HOME/.cargo/bin:$GATEHOUSE_ROOT/end2end/node_modules/.bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_build_tools() {
  command -v cargo >/dev/null || { echo "Rust is required: https://rustup.rs" >&2; exit 1; }
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "Adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  if ! cargo leptos --version 2>/dev/null | grep -q " $CARGO_LEPTOS_VERSION\$"; then
    say "Installing cargo-leptos $CARGO_LEPTOS_VERSION (about 12 minutes, once)"
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
      cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked
  fi
  if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION\$"; then
    say "Installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 4 minutes, once)"
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
  fi
  # wasm-opt from npm's binaryen (cargo-leptos runs it on release builds), plus Playwright.
  local stamp="$GATEHOUSE_ROOT/end2end/node_modules/.package-lock.json"
  if [ ! -x "$GATEHOUSE_ROOT/end2end/node_modules/.bin/wasm-opt" ] \
    || [ "$GATEHOUSE_ROOT/end2end/package-lock.json" -nt "$stamp" ]; then
    say "Installing npm packages (binaryen, Playwright)"
    (cd "$GATEHOUSE_ROOT/end2end" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  fi
}

ensure_test_tools() {
  ensure_build_tools
  if [ ! -x /usr/bin/chromium ]; then
    say "Installing Debian's Chromium"
    as_root apt-get update -qq
    as_root apt-get install -y -qq chromium
  fi
  local venv="$GATEHOUSE_ROOT/end2end/.venv"
  local requirements="$GATEHOUSE_ROOT/end2end/requirements.txt"
  if ! cmp -s "$requirements" "$venv/installed.txt"; then
    say "Preparing the Python environment (requests for the spec's examples, the OpenAI SDK)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r "$requirements"
    cp "$requirements" "$venv/installed.txt"
  fi
  export GATEHOUSE_TEST_PYTHON="$venv/bin/python"
}

# Whether a PostgreSQL server answers at this URL.
pg_reachable() {
  python3 - "$1" <<'PY'
import socket, sys, urllib.parse
url = urllib.parse.urlparse(sys.argv[1])
try:
    socket.create_connection((url.hostname or "127.0.0.1", url.port or 5432), timeout=2).close()
except OSError:
    sys.exit(1)
PY
}

# Builds the server (release) into $TARGET_DIR and the console into $SITE_ROOT, its files
# named by their content's hash and stored brotli- and gzip-compressed beside the originals.
build_release() {
  say "Building Gatehouse (release)"
  # cargo-leptos takes LEPTOS_SITE_ROOT from the environment: pin it to the site the tests
  # and scripts/run serve.
  (cd "$GATEHOUSE_ROOT" && LEPTOS_SITE_ROOT="$SITE_ROOT" cargo leptos build --release --precompress)
}
