package cluster

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"gopkg.in/yaml.v3"
)

// File is the cluster file: where the nodes are and how to reach their
// Admin APIs. Example: bench/cluster.example.yaml.
type File struct {
	// LoadBalancer is the cluster's entry point; only the optional load
	// goes through it.
	LoadBalancer string `yaml:"load_balancer"`
	// AdminToken, when set, is sent as "Kong-Admin-Token" and as a bearer
	// token to every Admin API.
	AdminToken string `yaml:"admin_token"`
	// TLS configures HTTPS Admin API, proxy and metrics URLs (mTLS
	// included); the zero value uses the system roots and no client
	// certificate.
	TLS TLS `yaml:"tls"`
	// Nodes lists every node; at least one.
	Nodes []Node `yaml:"nodes"`
}

// TLS holds PEM file paths.
type TLS struct {
	// CA verifies the nodes' certificates ("" means the system roots).
	CA string `yaml:"ca"`
	// ClientCert and ClientKey are the client certificate for mTLS; both
	// or neither.
	ClientCert string `yaml:"client_cert"`
	ClientKey  string `yaml:"client_key"`
	// ServerName overrides the name verified in the nodes' certificates.
	ServerName string `yaml:"server_name"`
}

// Node is one node of the cluster.
type Node struct {
	// Name labels the node in the report ("" means node-<n>).
	Name string `yaml:"name"`
	// Admin is the Admin API URL; required.
	Admin string `yaml:"admin"`
	// Proxy is the node's own proxy URL (not the load balancer); required:
	// the probes ask each node directly.
	Proxy string `yaml:"proxy"`
	// Metrics is the node's Prometheus URL, path included
	// (http://host:8100/metrics); "" means none.
	Metrics string `yaml:"metrics"`
}

// Load reads and validates a cluster file.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster file: %w", err)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a misspelt key is an error, not a silent default
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("cluster file %s: %w", path, err)
	}
	if err := f.validate(); err != nil {
		return nil, fmt.Errorf("cluster file %s: %w", path, err)
	}
	return &f, nil
}

func (f *File) validate() error {
	if len(f.Nodes) == 0 {
		return errors.New("nodes: at least one node is required")
	}
	if f.LoadBalancer != "" {
		if err := checkURL(f.LoadBalancer); err != nil {
			return fmt.Errorf("load_balancer: %w", err)
		}
	}
	if (f.TLS.ClientCert == "") != (f.TLS.ClientKey == "") {
		return errors.New("tls.client_cert and tls.client_key: give both or neither")
	}
	names := map[string]bool{}
	for i := range f.Nodes {
		n := &f.Nodes[i]
		if n.Name == "" {
			n.Name = fmt.Sprintf("node-%d", i+1)
		}
		if names[n.Name] {
			return fmt.Errorf("nodes[%d].name: %q is used twice", i, n.Name)
		}
		names[n.Name] = true
		for _, u := range []struct{ key, val string }{{"admin", n.Admin}, {"proxy", n.Proxy}} {
			if u.val == "" {
				return fmt.Errorf("nodes[%d].%s: required", i, u.key)
			}
			if err := checkURL(u.val); err != nil {
				return fmt.Errorf("nodes[%d].%s: %w", i, u.key, err)
			}
		}
		if n.Metrics != "" {
			if err := checkURL(n.Metrics); err != nil {
				return fmt.Errorf("nodes[%d].metrics: %w", i, err)
			}
		}
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: want http(s)://host:port", s)
	}
	return nil
}

// transport returns the HTTP transport for f's TLS settings.
func (f *File) transport() (*http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	cfg := &tls.Config{ServerName: f.TLS.ServerName, MinVersion: tls.VersionTLS12}
	if f.TLS.CA != "" {
		pem, err := os.ReadFile(f.TLS.CA)
		if err != nil {
			return nil, fmt.Errorf("cluster file: tls.ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cluster file: tls.ca: no certificate in %s", f.TLS.CA)
		}
		cfg.RootCAs = pool
	}
	if f.TLS.ClientCert != "" {
		cert, err := tls.LoadX509KeyPair(f.TLS.ClientCert, f.TLS.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("cluster file: tls.client_cert/tls.client_key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	tr.TLSClientConfig = cfg
	return tr, nil
}

// adminTimeout bounds one Admin API or metrics request.
const adminTimeout = 10 * time.Second
