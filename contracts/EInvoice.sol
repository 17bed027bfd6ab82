// SPDX-License-Identifier: Apache-2.0
// bctest workload "einvoice" (电子发票): an invoice is issued, transferred between holders
// and redeemed exactly once; a second redemption reverts.
// Storage layout: slot 0 invoices (bytes32 => Invoice{issuer|state|transfers|redemptions: +0,
//   holder: +1, amount: +2}), slot 1 issued, slot 2 redeemed
pragma solidity 0.8.28;

contract EInvoice {
    struct Invoice {
        address issuer;
        uint8 state;          // 0 none, 1 issued, 2 redeemed
        uint32 transfers;
        uint32 redemptions;
        bytes32 holder;
        uint256 amount;
    }

    mapping(bytes32 => Invoice) public invoices;
    uint256 public issued;
    uint256 public redeemed;

    function issue(bytes32 id, bytes32 holder, uint256 amount) external {
        require(invoices[id].state == 0, "exists");
        invoices[id] = Invoice(msg.sender, 1, 0, 0, holder, amount);
        issued += 1;
    }

    function transfer(bytes32 id, bytes32 from, bytes32 to) external {
        Invoice storage inv = invoices[id];
        require(inv.state == 1, "not transferable");
        require(inv.issuer == msg.sender, "not the issuer");
        require(inv.holder == from, "not the holder");
        inv.holder = to;
        inv.transfers += 1;
    }

    function redeem(bytes32 id, bytes32 holder) external {
        Invoice storage inv = invoices[id];
        require(inv.state == 1, "not redeemable");
        require(inv.issuer == msg.sender, "not the issuer");
        require(inv.holder == holder, "not the holder");
        inv.state = 2;
        inv.redemptions += 1;
        redeemed += 1;
    }
}
