// SPDX-License-Identifier: Apache-2.0
// bctest workload "donothing": BlockBench's DoNothing, the cost of consensus and a call
// with no execution. Its one effect: the call succeeded (receipt status 1).
pragma solidity 0.8.28;

contract DoNothing {
    function nothing() external {}
}
