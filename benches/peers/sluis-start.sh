#!/usr/bin/env bash
# Starts sluis for the peers harness: writes $BENCH_RUN_DIR/sluis.toml from the harness's
# environment, then execs the proxy in the foreground (the harness measures its process and
# stops it by PID). The harness's host names resolve to 127.0.0.1, so loopback is allowed
# upstream, and [resolve] pins both names so that nothing depends on /etc/hosts.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${SLUIS_BIN:-$repo/target/release/sluis}"
extra="${SLUIS_EXTRA_CONFIG:-}"
policy_dir="${SLUIS_POLICY_DIR:-$repo/policies}"
mode="${SLUIS_MODE:-}"
: "${BENCH_PORT:?}" "${BENCH_RUN_DIR:?}" "${BENCH_ORIGIN_CA:?}" "${BENCH_PROXY_CA_CERT:?}"
: "${BENCH_PROXY_CA_KEY:?}" "${BENCH_INSPECT_HOST:?}" "${BENCH_TUNNEL_HOST:?}"
[ -x "$bin" ] || { echo "sluis-start: $bin missing; run cargo build --release" >&2; exit 1; }

# sluis refuses a CA key that others can read; the harness's key may be 0644.
install -m 600 "$BENCH_PROXY_CA_KEY" "$BENCH_RUN_DIR/proxy-ca.key"
mkdir -p "$BENCH_RUN_DIR/spool" "$BENCH_RUN_DIR/policies"
# The shipped policy, with the tunnel host on the TLS bypass list (W3 needs a real tunnel);
# every other host, the upload host included, is intercepted and inspected per the defaults.
cp "$policy_dir"/*.toml "$BENCH_RUN_DIR/policies/"
sed -i "0,/^bypass = \[/s//bypass = [\n  \"$BENCH_TUNNEL_HOST\",/" "$BENCH_RUN_DIR/policies/tls.toml"
# SLUIS_MODE=monitor (sluis-monitor.env): the same policy, logging would-blocks instead.
if [ -n "$mode" ]; then
  sed -i "0,/^mode = \"[a-z]*\"/s//mode = \"$mode\"/" "$BENCH_RUN_DIR/policies/ksp.toml"
  grep -q "^mode = \"$mode\"" "$BENCH_RUN_DIR/policies/ksp.toml" || {
    echo "sluis-start: cannot set mode $mode in ksp.toml" >&2; exit 1; }
fi
config="$BENCH_RUN_DIR/sluis.toml"
cat > "$config" <<TOML
[proxy]
listen = "127.0.0.1:$BENCH_PORT"

[admin]
listen = "127.0.0.1:0"

[upstream]
allow_private = ["127.0.0.0/8"]
extra_ca = "$BENCH_ORIGIN_CA"

[resolve]
"$BENCH_INSPECT_HOST" = "127.0.0.1"
"$BENCH_TUNNEL_HOST" = "127.0.0.1"

[tls]
ca_cert = "$BENCH_PROXY_CA_CERT"
ca_key = "$BENCH_RUN_DIR/proxy-ca.key"

[policy]
dir = "$BENCH_RUN_DIR/policies"

[inspect]
spool_dir = "$BENCH_RUN_DIR/spool"

[audit]
fingerprint_key_file = "$BENCH_RUN_DIR/fingerprint.key"

[[audit.sink]]
type = "file"
path = "$BENCH_RUN_DIR/audit/audit.log"

[log]
format = "json"
level = "info"
TOML
if [ -n "$extra" ] && [ -f "$extra" ]; then
  {
    echo
    echo "# ---- from $extra"
    sed -e "s#@INSPECT_HOST@#$BENCH_INSPECT_HOST#g" -e "s#@TUNNEL_HOST@#$BENCH_TUNNEL_HOST#g" "$extra"
  } >> "$config"
fi
exec "$bin" run --config "$config"
