#!/bin/sh
# Vendor-contract entry point for Litecoin Core in regtest mode: writes litecoin.conf
# from the BCTEST_* variables and /bctest/rpcauth.conf, then runs litecoind in the
# foreground (logs on stdout).
set -eu

DATA=/home/chain/data
RPC_PORT=19443
P2P_PORT=19444
mkdir -p "$DATA"

hex_ip() {  # /proc/net/route stores addresses as little-endian hex
  h=$1
  printf '%d.%d.%d.%d' "0x$(echo "$h" | cut -c7-8)" "0x$(echo "$h" | cut -c5-6)" \
    "0x$(echo "$h" | cut -c3-4)" "0x$(echo "$h" | cut -c1-2)"
}

# The run network's subnet(s): every directly connected, non-default route. RPC and
# peer whitelisting are limited to them (the host reaches RPC through the published
# port, i.e. from the network's gateway address).
subnets=""
while read -r iface dest _gw _flags _ref _use _metric mask _rest; do
  [ "$iface" = "Iface" ] && continue
  [ "$dest" = "00000000" ] && continue
  subnets="$subnets $(hex_ip "$dest")/$(hex_ip "$mask")"
done < /proc/net/route
if [ -z "$subnets" ]; then
  echo "bctest-entrypoint: no network route found in /proc/net/route" >&2
  exit 1
fi

if [ ! -s /bctest/rpcauth.conf ]; then
  echo "bctest-entrypoint: /bctest/rpcauth.conf is missing (the harness writes it)" >&2
  exit 1
fi

CONF="$DATA/litecoin.conf"
{
  echo "# written by bctest-entrypoint for node ${BCTEST_NODE_INDEX}/${BCTEST_NODE_COUNT} (run ${BCTEST_RUN_ID:-?})"
  echo "regtest=1"
  echo "[regtest]"
  echo "server=1"
  echo "printtoconsole=1"
  echo "logtimestamps=1"
  echo "disablewallet=1"          # the harness signs in Python and mines with generatetoaddress
  echo "txindex=0"
  echo "listen=1"
  echo "port=${P2P_PORT}"
  echo "dnsseed=0"
  echo "discover=0"
  echo "listenonion=0"
  echo "upnp=0"
  echo "persistmempool=0"
  # Regtest turns Core's internal consistency checks on: a full mempool check after
  # every transaction accepted from a peer (O(mempool) each: relay collapses under
  # load) and a block-tree check after every block. Off unless asked for.
  if [ "${BCTEST_PARAM_CONSISTENCY_CHECKS:-false}" = "true" ]; then
    echo "checkmempool=1"
    echo "checkblockindex=1"
  else
    echo "checkmempool=0"
    echo "checkblockindex=0"
  fi
  echo "dbcache=${BCTEST_PARAM_DBCACHE:-100}"
  echo "maxmempool=${BCTEST_PARAM_MAXMEMPOOL:-300}"
  echo "rpcbind=0.0.0.0"
  echo "rpcport=${RPC_PORT}"
  echo "rpcthreads=${BCTEST_PARAM_RPC_THREADS:-8}"
  echo "rpcworkqueue=${BCTEST_PARAM_RPC_WORK_QUEUE:-8192}"
  echo "rpcservertimeout=60"
  if [ -n "${BCTEST_PARAM_DEBUG:-}" ]; then   # Core debug log categories, e.g. net,mempool
    old_ifs=$IFS
    IFS=,
    for category in ${BCTEST_PARAM_DEBUG}; do echo "debug=$category"; done
    IFS=$old_ifs
  fi
  cat /bctest/rpcauth.conf
  for net in $subnets; do
    echo "rpcallowip=$net"
    if [ "${BCTEST_PARAM_WHITELIST_PEERS:-true}" = "true" ]; then
      # noban: transactions are announced to these peers without the Poisson
      # trickle delay; relay: no in-flight request cap on announcements from them.
      echo "whitelist=noban,relay@$net"
    fi
  done
  # MWEB never activates: by default it activates at height 432 on regtest, after
  # which generatetoaddress fails (bad-txns-vin-empty in the HogEx) without a wallet.
  echo "vbparams=mweb:-2:0"
  # Every other node of the run, by its name on the run network.
  old_ifs=$IFS
  IFS=,
  for peer in ${BCTEST_PEERS}; do
    [ "$peer" = "${BCTEST_NODE_NAME}" ] && continue
    echo "addnode=${peer}:${P2P_PORT}"
  done
  IFS=$old_ifs
} > "$CONF"

echo "bctest-entrypoint: node ${BCTEST_NODE_INDEX}/${BCTEST_NODE_COUNT}: $(litecoind -version | head -1)"
grep -v '^rpcauth=' "$CONF" | sed 's/^/bctest-entrypoint:   /'
exec litecoind -datadir="$DATA" -conf="$CONF"
