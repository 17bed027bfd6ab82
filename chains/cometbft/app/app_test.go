package main

import (
	"context"
	"testing"

	"github.com/cometbft/cometbft/abci/types"
)

func check(t *testing.T, app *App, tx string, want uint32) {
	t.Helper()
	resp, _ := app.CheckTx(context.Background(), &types.RequestCheckTx{Tx: []byte(tx)})
	if resp.Code != want {
		t.Fatalf("CheckTx %q: code %d (%s), want %d", tx, resp.Code, resp.Log, want)
	}
}

func block(t *testing.T, app *App, height int64, txs ...string) []uint32 {
	t.Helper()
	raw := make([][]byte, len(txs))
	for i, tx := range txs {
		raw[i] = []byte(tx)
	}
	resp, _ := app.FinalizeBlock(context.Background(), &types.RequestFinalizeBlock{Txs: raw, Height: height})
	_, _ = app.Commit(context.Background(), &types.RequestCommit{})
	codes := make([]uint32, len(txs))
	for i, result := range resp.TxResults {
		codes[i] = result.Code
	}
	return codes
}

func query(app *App, key string) string {
	resp, _ := app.Query(context.Background(), &types.RequestQuery{Data: []byte(key)})
	return string(resp.Value)
}

func TestDoubleRedemptionRefusedInCheckTxAndFinalizeBlock(t *testing.T) {
	app := NewApp()
	check(t, app, "inv/a=issue,alice,100,1", CodeOK)
	check(t, app, "inv/a=transfer,alice,bob,2", CodeOK)
	check(t, app, "inv/a=redeem,bob,3", CodeOK)
	check(t, app, "inv/a=redeem,bob,4", CodeRedeemed) // still in the mempool: refused
	// A proposer that ignores CheckTx: FinalizeBlock refuses the second redemption.
	codes := block(t, app, 1, "inv/a=issue,alice,100,1", "inv/a=transfer,alice,bob,2",
		"inv/a=redeem,bob,3", "inv/a=redeem,bob,4")
	if codes[0] != 0 || codes[1] != 0 || codes[2] != 0 || codes[3] != CodeRedeemed {
		t.Fatalf("codes %v", codes)
	}
	if got := query(app, "inv/a"); got != "redeemed,bob,100,1,1" {
		t.Fatalf("state %q", got)
	}
	check(t, app, "inv/a=redeem,bob,5", CodeRedeemed) // after the commit too
	if codes := block(t, app, 2, "inv/a=redeem,bob,5"); codes[0] != CodeRedeemed {
		t.Fatalf("codes %v", codes)
	}
	check(t, app, "inv/b=redeem,bob,1", CodeNoInvoice)
	check(t, app, "inv/c=issue,carol,5,1", CodeOK)
	check(t, app, "inv/c=redeem,bob,2", CodeNotOwner)
}

func TestEvidenceWriteOnceAndTraceOrder(t *testing.T) {
	app := NewApp()
	hash := "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	codes := block(t, app, 1, "ev/d1="+hash+",pdf", "ev/d1="+hash+",other",
		"tr/p/0=made", "tr/p/2=shipped", "tr/p/1=packed", "tr/p=9", "plain=1", "bad")
	want := []uint32{0, CodeExists, 0, CodeOutOfOrder, 0, CodeBadFormat, 0, CodeBadFormat}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("codes %v, want %v", codes, want)
		}
	}
	if query(app, "ev/d1") != hash+",pdf" || query(app, "tr/p") != "2" ||
		query(app, "tr/p/1") != "packed" || query(app, "plain") != "1" {
		t.Fatalf("state %v", app.committed)
	}
	check(t, app, "tr/p/2=shipped", CodeOK)
	check(t, app, "tr/p/3=sold", CodeOK)
	check(t, app, "tr/p/3=sold-again", CodeOutOfOrder)
}

func TestAppHashIsDeterministic(t *testing.T) {
	one, two := NewApp(), NewApp()
	block(t, one, 1, "a=1", "b=2")
	block(t, two, 1, "a=1", "b=2")
	if string(one.appHash) != string(two.appHash) || len(one.appHash) != 32 {
		t.Fatal("app hashes differ")
	}
}
