#!/bin/sh
# Vendor-contract entry point: reads BCTEST_* variables and the files the harness
# generated under /bctest/ (read-only):
#   genesis.json             the shared genesis (chain id, the validators: every node, or
#                            with a topology the root nodes only)
#   priv_validator_key.json  this node's validator key (a full node's - BCTEST_NODE_ROLE
#                            management/application - is in no validator set: it only syncs)
#   node_key.json            this node's p2p key
#   persistent_peers         <node id>@node<j>:26656 for every other node, comma-separated
# It keeps its state in $CMTHOME (default ~/.cometbft), so a restarted container
# resumes with its blocks and its priv_validator_state (no double signing).
set -eu
home="${CMTHOME:-$HOME/.cometbft}"
mkdir -p "$home/config" "$home/data"
for file in genesis.json priv_validator_key.json node_key.json; do
  if [ -f "/bctest/$file" ]; then
    cp "/bctest/$file" "$home/config/$file"
  fi
done
# A fresh validator has signed nothing; a restarted one keeps its state.
if [ ! -f "$home/data/priv_validator_state.json" ]; then
  printf '{"height":"0","round":0,"step":0}\n' > "$home/data/priv_validator_state.json"
fi
# Writes the default config.toml; keeps the files above.
cometbft init --home "$home" >/dev/null

config="$home/config/config.toml"
# set SECTION KEY VALUE: replace `KEY = ...` inside [SECTION] ("" = the top level).
# Fails loudly when the key is missing, so a renamed option cannot be silently ignored.
set_option() {
  awk -v section="$1" -v key="$2" -v value="$3" '
    /^\[/ { current = substr($0, 2, length($0) - 2) }
    current == section && index($0, key " = ") == 1 { print key " = " value; found = 1; next }
    { print }
    END { if (!found) exit 3 }' "$config" > "$config.tmp" || {
    echo "bctest-entrypoint: no option '$2' in [$1] of $config" >&2; exit 1; }
  mv "$config.tmp" "$config"
}
quoted() { printf '"%s"' "$1"; }

peers=""
if [ -f /bctest/persistent_peers ]; then
  peers=$(cat /bctest/persistent_peers)
fi
# CometBFT resolves persistent peers once, at start, and drops names that do not
# resolve yet; the other containers may still be starting, so wait (at most 30 s).
waited=0
for peer in $(echo "${BCTEST_PEERS:-}" | tr ',' ' '); do
  [ "$peer" = "${BCTEST_NODE_NAME:-}" ] && continue
  until getent hosts "$peer" >/dev/null 2>&1 || [ "$waited" -ge 60 ]; do
    sleep 0.5
    waited=$((waited + 1))
  done
done
proxy_app="${BCTEST_PARAM_PROXY_APP:-kvstore}"
if [ "$proxy_app" = scenarios ]; then
  # The scenarios' ABCI app (bctest-abci) beside cometbft over ABCI's socket protocol;
  # cometbft needs it listening when it starts (it exits if the app goes away).
  ready=/tmp/bctest-abci.ready
  rm -f "$ready"
  bctest-abci -addr tcp://127.0.0.1:26658 -ready "$ready" &
  waited=0
  until [ -f "$ready" ]; do
    if [ "$waited" -ge 100 ] || ! kill -0 $! 2>/dev/null; then
      echo "bctest-entrypoint: bctest-abci did not start listening" >&2; exit 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  proxy_app=tcp://127.0.0.1:26658
fi
set_option "" proxy_app "$(quoted "$proxy_app")"
set_option "" moniker "$(quoted "${BCTEST_NODE_NAME:-node${BCTEST_NODE_INDEX:-0}}")"
set_option "" log_level "$(quoted "${BCTEST_PARAM_LOG_LEVEL:-info}")"
set_option rpc laddr "$(quoted tcp://0.0.0.0:26657)"
set_option p2p laddr "$(quoted tcp://0.0.0.0:26656)"
set_option p2p persistent_peers "$(quoted "$peers")"
set_option p2p addr_book_strict false
set_option p2p allow_duplicate_ip true
set_option p2p pex false
set_option mempool size "${BCTEST_PARAM_MEMPOOL_SIZE:-10000}"
set_option mempool cache_size "${BCTEST_PARAM_MEMPOOL_CACHE_SIZE:-20000}"
set_option consensus timeout_commit "$(quoted "${BCTEST_PARAM_TIMEOUT_COMMIT:-1s}")"
set_option consensus timeout_propose "$(quoted "${BCTEST_PARAM_TIMEOUT_PROPOSE:-3s}")"
set_option consensus create_empty_blocks "${BCTEST_PARAM_CREATE_EMPTY_BLOCKS:-true}"
set_option consensus create_empty_blocks_interval \
  "$(quoted "${BCTEST_PARAM_CREATE_EMPTY_BLOCKS_INTERVAL:-0s}")"
set_option tx_index indexer "$(quoted "${BCTEST_PARAM_INDEXER:-kv}")"

echo "bctest-entrypoint: node ${BCTEST_NODE_INDEX:-0}/${BCTEST_NODE_COUNT:-1}:" \
  "cometbft $(cometbft version) ${BCTEST_PARAM_PROXY_APP:-kvstore}, node id $(cometbft show-node-id --home "$home")," \
  "timeout_commit ${BCTEST_PARAM_TIMEOUT_COMMIT:-1s}, peers ${peers:-none}"
exec cometbft start --home "$home"
