#!/bin/sh
# Vendor-contract entry point for geth + Clique. Inputs (from the EVM adapter):
#   /bctest/genesis.json  clique genesis: the signers in extradata, funded senders
#   /bctest/signer.key    this node's signer private key (hex); only on signers (every node,
#                         or with a topology the root nodes): without it the node syncs
#                         every block and never seals (BCTEST_NODE_ROLE management/application)
#   /bctest/nodekey       this node's p2p key (hex)
#   /bctest/enodes        "<name> <enode public key hex>" per node
set -eu
data="$HOME/data"
mkdir -p "$data"
geth --datadir "$data" --verbosity 2 init /bctest/genesis.json
signer=""
if [ -f /bctest/signer.key ]; then
  : > "$HOME/password"
  signer=$(geth --datadir "$data" --verbosity 2 account import --password "$HOME/password" /bctest/signer.key \
           | sed -n 's/.*{\([0-9a-fA-F]*\)}.*/\1/p')
fi
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
# geth's options, shared by signers and non-signers (POSIX sh: the list is "$@").
set -- --config "$HOME/config.toml" --datadir "$data" \
  --networkid "$BCTEST_CHAIN_ID" --nodekey /bctest/nodekey --nodiscover \
  --port 30303 --syncmode full --miner.gaslimit "${BCTEST_PARAM_GAS_LIMIT}" \
  --txpool.globalslots "${BCTEST_PARAM_TXPOOL_SLOTS}" --txpool.accountslots 256 \
  --txpool.globalqueue 20000 --txpool.accountqueue 512 \
  --http --http.addr 0.0.0.0 --http.port 8545 --http.api eth,net,web3,txpool \
  --http.vhosts '*' --ws --ws.addr 0.0.0.0 --ws.port 8546 --ws.origins '*' --ws.api eth,net,web3 \
  --verbosity 3
if [ -z "$signer" ]; then
  echo "bctest-entrypoint: node ${BCTEST_NODE_INDEX}/${BCTEST_NODE_COUNT}" \
    "(${BCTEST_NODE_ROLE:-no role}): not a signer, syncs only"
  exec geth "$@"
fi
echo "bctest-entrypoint: node ${BCTEST_NODE_INDEX}/${BCTEST_NODE_COUNT}: signer 0x$signer"
# Seal only once every other node is a peer (or after 60 s). Signers that seal before they
# are connected build private forks, and with an even signer count two equal forks whose
# signers are all "recently signed" never resolve: the known Clique deadlock (go-ethereum
# #18402), seen here as 4 signers stalled at height 2.
want=$((BCTEST_NODE_COUNT - 1))
(
  ipc="$data/geth.ipc"
  while [ ! -S "$ipc" ]; do sleep 0.2; done
  # One console does the waiting (a geth attach per poll costs seconds on a busy 0.5-CPU
  # node): up to 60 s for the peers, then until --unlock has unlocked the signer key (a
  # seal before that fails for good; eth.sign succeeds only with the key unlocked).
  script="var want = $want, end = Date.now() + 60000;
while (admin.peers.length < want && Date.now() < end) admin.sleep(0.5);
function unlocked() { try { eth.sign(eth.coinbase, '0x00'); return true } catch (e) { return false } }
end = Date.now() + 60000;
while (!unlocked() && Date.now() < end) admin.sleep(0.5);
miner.start();
'sealing with ' + admin.peers.length + '/' + want + ' peers, key unlocked: ' + unlocked()"
  said="could not start sealing"
  for _ in 1 2 3 4 5; do
    said=$(geth --verbosity 1 attach --exec "$script" "$ipc" 2>&1) && break
    sleep 2
  done
  echo "bctest-entrypoint: $said"
) &
exec geth "$@" --miner.etherbase "0x$signer" --unlock "0x$signer" --password "$HOME/password" \
  --allow-insecure-unlock
