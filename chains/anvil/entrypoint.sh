#!/bin/sh
# Vendor-contract entry point: reads BCTEST_* variables and /bctest/ files.
set -eu
args="--host 0.0.0.0 --port 8545 --chain-id ${BCTEST_CHAIN_ID}"
if [ -f /bctest/genesis.json ]; then
  args="$args --init /bctest/genesis.json"
fi
if [ "${BCTEST_PARAM_BLOCK_TIME:-0}" != "0" ]; then
  args="$args --block-time ${BCTEST_PARAM_BLOCK_TIME}"
fi
if [ -n "${BCTEST_PARAM_GAS_LIMIT:-}" ]; then
  args="$args --gas-limit ${BCTEST_PARAM_GAS_LIMIT}"
fi
if [ "${BCTEST_PARAM_QUIET:-false}" = "true" ]; then
  args="$args --silent"
fi
echo "bctest-entrypoint: node ${BCTEST_NODE_INDEX}/${BCTEST_NODE_COUNT}: anvil $args"
# shellcheck disable=SC2086
exec anvil $args
