// bctest-abci: the scenarios' ABCI application (rules.go), served over ABCI's socket
// protocol beside cometbft in the node container (chains/cometbft/entrypoint.sh starts
// it when the pack param proxy_app is `scenarios`).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/cometbft/cometbft/abci/server"
	cmtlog "github.com/cometbft/cometbft/libs/log"
)

func main() {
	addr := flag.String("addr", "tcp://127.0.0.1:26658", "listen address (tcp://host:port or unix://path)")
	ready := flag.String("ready", "", "file created once the server listens")
	flag.Parse()
	srv := server.NewSocketServer(*addr, NewApp())
	srv.SetLogger(cmtlog.NewFilter(cmtlog.NewTMLogger(cmtlog.NewSyncWriter(os.Stdout)), cmtlog.AllowError()))
	if err := srv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "bctest-abci:", err)
		os.Exit(1)
	}
	if *ready != "" {
		if err := os.WriteFile(*ready, []byte("listening\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bctest-abci:", err)
			os.Exit(1)
		}
	}
	fmt.Println("bctest-abci: listening on", *addr)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	_ = srv.Stop()
}
