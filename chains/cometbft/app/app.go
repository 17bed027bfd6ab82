package main

// The ABCI application: kvstore's behaviour plus the scenarios' rules (rules.go), in memory.
// The committed state, the block being finalized and the mempool's view are three layers:
// CheckTx applies each accepted transaction to its own overlay (so a second redemption
// waiting in the mempool behind the first is refused), Commit folds the block in and
// clears the overlay, and CometBFT's recheck then re-applies the txs still waiting.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"sync"

	"github.com/cometbft/cometbft/abci/types"
)

type App struct {
	types.BaseApplication
	mu        sync.Mutex
	committed map[string]string
	block     map[string]string // writes of the block being finalized
	check     map[string]string // writes of the txs CheckTx accepted since the last commit
	height    int64
	appHash   []byte
	pending   []byte // the hash FinalizeBlock computed, committed by Commit
	size      int64
	blockSize int64
}

func NewApp() *App {
	return &App{committed: map[string]string{}, block: map[string]string{},
		check: map[string]string{}, appHash: []byte{}}
}

func (app *App) view(layer map[string]string) Getter {
	return func(key string) (string, bool) {
		if value, ok := layer[key]; ok {
			return value, true
		}
		value, ok := app.committed[key]
		return value, ok
	}
}

func (app *App) Info(context.Context, *types.RequestInfo) (*types.ResponseInfo, error) {
	app.mu.Lock()
	defer app.mu.Unlock()
	return &types.ResponseInfo{Data: `{"size":` + strconv.FormatInt(app.size, 10) + `}`,
		Version: "bctest-scenarios/1", AppVersion: 1, LastBlockHeight: app.height,
		LastBlockAppHash: app.appHash}, nil
}

func (app *App) CheckTx(_ context.Context, req *types.RequestCheckTx) (*types.ResponseCheckTx, error) {
	app.mu.Lock()
	defer app.mu.Unlock()
	writes, code, log := Apply(app.view(app.check), req.Tx)
	if code != CodeOK {
		return &types.ResponseCheckTx{Code: code, Log: log, Codespace: "bctest"}, nil
	}
	for _, w := range writes {
		app.check[w.Key] = w.Value
	}
	return &types.ResponseCheckTx{Code: CodeOK, GasWanted: 1}, nil
}

func (app *App) FinalizeBlock(_ context.Context, req *types.RequestFinalizeBlock) (*types.ResponseFinalizeBlock, error) {
	app.mu.Lock()
	defer app.mu.Unlock()
	app.block = map[string]string{}
	app.blockSize = 0
	hash := sha256.New()
	hash.Write(app.appHash)
	results := make([]*types.ExecTxResult, len(req.Txs))
	for i, tx := range req.Txs {
		writes, code, log := Apply(app.view(app.block), tx)
		if code != CodeOK {
			results[i] = &types.ExecTxResult{Code: code, Log: log, Codespace: "bctest"}
			continue
		}
		for _, w := range writes {
			app.block[w.Key] = w.Value
			// The app hash chains every write in block order: the same on every validator.
			var lengths [16]byte
			binary.BigEndian.PutUint64(lengths[:8], uint64(len(w.Key)))
			binary.BigEndian.PutUint64(lengths[8:], uint64(len(w.Value)))
			hash.Write(lengths[:])
			hash.Write([]byte(w.Key))
			hash.Write([]byte(w.Value))
		}
		app.blockSize++
		key, value, _ := Split(tx)
		results[i] = &types.ExecTxResult{Code: CodeOK, Events: []types.Event{{Type: "app",
			Attributes: []types.EventAttribute{{Key: "key", Value: key, Index: true},
				{Key: "value", Value: value, Index: false}}}}}
	}
	app.height = req.Height
	app.pending = hash.Sum(nil)
	return &types.ResponseFinalizeBlock{TxResults: results, AppHash: app.pending}, nil
}

func (app *App) Commit(context.Context, *types.RequestCommit) (*types.ResponseCommit, error) {
	app.mu.Lock()
	defer app.mu.Unlock()
	for key, value := range app.block {
		app.committed[key] = value
	}
	app.size += app.blockSize
	app.appHash = app.pending
	app.block = map[string]string{}
	app.check = map[string]string{} // the mempool rechecks what is left against the new state
	return &types.ResponseCommit{}, nil
}

// Query answers by key (Data), as kvstore does, for any path ("", "/key", "/store").
func (app *App) Query(_ context.Context, req *types.RequestQuery) (*types.ResponseQuery, error) {
	app.mu.Lock()
	defer app.mu.Unlock()
	value, found := app.committed[string(req.Data)]
	log := "does not exist"
	if found {
		log = "exists"
	}
	var stored []byte
	if found {
		stored = []byte(value)
	}
	return &types.ResponseQuery{Key: req.Data, Value: stored, Log: log, Height: app.height}, nil
}
