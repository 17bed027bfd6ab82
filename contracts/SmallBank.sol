// SPDX-License-Identifier: Apache-2.0
// bctest workload "smallbank": the SmallBank benchmark (Cahill et al.; BlockBench) over
// signed balances, so no operation reverts and every committed one has an effect.
// Storage layout: slot 0 checking (uint256 => int256), slot 1 savings, slot 2 ops
pragma solidity 0.8.28;

contract SmallBank {
    mapping(uint256 => int256) public checking;
    mapping(uint256 => int256) public savings;
    uint256 public ops;

    function amalgamate(uint256 a, uint256 b) external {
        int256 total = checking[a] + savings[a];
        checking[a] = 0;
        savings[a] = 0;
        checking[b] += total;
        ops += 1;
    }

    function depositChecking(uint256 a, int256 amount) external {
        checking[a] += amount;
        ops += 1;
    }

    function sendPayment(uint256 a, uint256 b, int256 amount) external {
        checking[a] -= amount;
        checking[b] += amount;
        ops += 1;
    }

    function transactSavings(uint256 a, int256 amount) external {
        savings[a] += amount;
        ops += 1;
    }

    function writeCheck(uint256 a, int256 amount) external {
        if (checking[a] + savings[a] < amount) {
            checking[a] -= amount + 1;   // overdraft penalty
        } else {
            checking[a] -= amount;
        }
        ops += 1;
    }

    function balance(uint256 a) external view returns (int256) {
        return checking[a] + savings[a];
    }
}
