// Command upstream is bench/proxycpu's tiny upstream: 200 with a small
// JSON body on every path, like perf-scripts/upstream.
//
// Usage: upstream -addr 127.0.0.1:19001
package main

import (
	"flag"
	"log"
	"net/http"
	"time"
)

var body = []byte(`{"message":"pong"}` + "\n")

func main() {
	addr := flag.String("addr", "127.0.0.1:19001", "listen address")
	flag.Parse()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
