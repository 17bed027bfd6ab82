#!/bin/sh
# Vendor-contract entry point for geth + Clique. Inputs (from the EVM adapter):
#   /bctest/genesis.json  clique genesis: every node's signer in extradata, funded senders
#   /bctest/signer.key    this node's signer private key (hex)
#   /bctest/nodekey       this node's p2p key (hex)
#   /bctest/enodes        "<name> <enode public key hex>" per node
set -eu
data="$HOME/data"
mkdir -p "$data"
geth --datadir "$data" --verbosity 2 init /bctest/genesis.json
: > "$HOME/password"
signer=$(geth --datadir "$data" --verbosity 2 account import --password "$HOME/password" /bctest/signer.key \
         | sed -n 's/.*{\([0-9a-fA-F]*\)}.*/\1/p')
# Static peers by IP on the run network (geth wants addresses, the harness gives names).
static=""
while read -r name pub; do
  [ "$name" = "$BCTEST_NODE_NAME" ] && continue
  ip=""
  for _ in $(seq 60); do
    ip=$(getent hosts "$name" | cut -d' ' -f1) && [ -n "$ip" ] && break
    sleep 0.5
  done
  static="$static\"enode://$pub@$ip:30303\","
done < /bctest/enodes
printf '[Node.P2P]\nStaticNodes = [%s]\n' "${static%,}" > "$HOME/config.toml"
echo "bctest-entrypoint: node ${BCTEST_NODE_INDEX}/${BCTEST_NODE_COUNT}: signer 0x$signer"
# Seal only once every other signer is a peer (or after 60 s). Signers that seal before they
# are connected build private forks, and with an even signer count two equal forks whose
# signers are all "recently signed" never resolve: the known Clique deadlock (go-ethereum
# #18402), seen here as 4 signers stalled at height 2.
want=$((BCTEST_NODE_COUNT - 1))
(
  ipc="$data/geth.ipc"
  for _ in $(seq 120); do
    peers=$(geth --verbosity 1 attach --exec 'admin.peers.length' "$ipc" 2>/dev/null || echo 0)
    [ "${peers:-0}" -ge "$want" ] 2>/dev/null && break
    sleep 0.5
  done
  # and only once --unlock has unlocked the signer key: a seal before that fails for good
  for _ in $(seq 120); do
    state=$(geth --verbosity 1 attach --exec 'personal.listWallets[0].status' "$ipc" 2>/dev/null || true)
    [ "$state" = '"Unlocked"' ] && break
    sleep 0.5
  done
  for _ in $(seq 60); do
    geth --verbosity 1 attach --exec 'miner.start()' "$ipc" >/dev/null 2>&1 && break
    sleep 1
  done
  echo "bctest-entrypoint: sealing with ${peers:-0}/$want peers"
) &
exec geth --config "$HOME/config.toml" --datadir "$data" \
  --networkid "$BCTEST_CHAIN_ID" --nodekey /bctest/nodekey --nodiscover \
  --port 30303 --syncmode full \
  --miner.etherbase "0x$signer" --unlock "0x$signer" --password "$HOME/password" \
  --allow-insecure-unlock --miner.gaslimit "${BCTEST_PARAM_GAS_LIMIT}" \
  --txpool.globalslots "${BCTEST_PARAM_TXPOOL_SLOTS}" --txpool.accountslots 256 \
  --txpool.globalqueue 20000 --txpool.accountqueue 512 \
  --http --http.addr 0.0.0.0 --http.port 8545 --http.api eth,net,web3,txpool \
  --http.vhosts '*' --ws --ws.addr 0.0.0.0 --ws.port 8546 --ws.origins '*' --ws.api eth,net,web3 \
  --verbosity 3
