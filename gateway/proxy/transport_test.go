package proxy

import (
	"sync"
	"testing"

	"github.com/sluice-gw/sluice/gateway/entity"
)

// TestClientPools checks which services share an upstream client (and so
// a connection pool): those whose timeouts the client applies are equal.
func TestClientPools(t *testing.T) {
	tr := newTransports(Options{}, &sync.Pool{})
	svc := func(protocol string, write int) *entity.Service {
		return &entity.Service{Protocol: protocol, ConnectTimeout: 60000, WriteTimeout: write, ReadTimeout: 60000}
	}
	if tr.get(svc("http", 1000)) != tr.get(svc("http", 1000)) {
		t.Error("two http services with the same timeouts got two clients")
	}
	if tr.get(svc("http", 1000)) == tr.get(svc("http", 2000)) {
		t.Error("http services with different write_timeout share a client; h1Client applies write_timeout")
	}
	if tr.get(svc("https", 1000)) != tr.get(svc("https", 2000)) {
		t.Error("https services differing only in write_timeout got two pools; http.Transport does not apply it")
	}
	if tr.get(svc("http", 1000)) == tr.get(svc("https", 1000)) {
		t.Error("an http and an https service share a client")
	}
}
