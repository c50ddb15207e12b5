// Command bareproxy serves bench/bareproxy, the reference point of
// bench/proxycpu: Sluice's CPU per request is reported as a ratio to it.
//
// Usage: bareproxy -addr 127.0.0.1:19100 -upstream http://127.0.0.1:19001
package main

import (
	"flag"
	"log"
	"net/http"
	"net/url"
	"time"

	"github.com/sluice-gw/sluice/bench/bareproxy"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:19100", "listen address")
	up := flag.String("upstream", "http://127.0.0.1:19001", "upstream base URL")
	flag.Parse()
	u, err := url.Parse(*up)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: *addr, Handler: bareproxy.New(u), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
