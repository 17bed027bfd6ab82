#!/bin/sh
# anvil on 127.0.0.1:8546 inside the container; the forging proxy answers on 8545.
set -eu
args="--host 127.0.0.1 --port 8546 --chain-id ${BCTEST_CHAIN_ID} --init /bctest/genesis.json"
args="$args --block-time ${BCTEST_PARAM_BLOCK_TIME:-1} --gas-limit ${BCTEST_PARAM_GAS_LIMIT:-300000000} --silent"
# shellcheck disable=SC2086
anvil $args &
exec python3 /usr/local/bin/forging-proxy.py
