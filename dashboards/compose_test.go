package dashboards

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/sluice-gw/sluice/internal/testenv"
)

// grafanaDashboardsPath is where the compose stack mounts dashboards/grafana
// and where the dashboard provider reads it.
const grafanaDashboardsPath = "/var/lib/grafana/dashboards/sluice"

// repoRoot is the repository root relative to this package.
const repoRoot = ".."

// composeFile is the subset of the Compose specification docker-compose.yml uses.
type composeFile struct {
	NodeTemplate any                       `yaml:"x-sluice-node"`
	EnvTemplate  any                       `yaml:"x-sluice-env"`
	Services     map[string]composeService `yaml:"services"`
	Volumes      map[string]any            `yaml:"volumes"`
}

// composeService is one service of docker-compose.yml.
type composeService struct {
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Image     string   `yaml:"image"`
	Command   []string `yaml:"command"`
	Restart   string   `yaml:"restart"`
	Profiles  []string `yaml:"profiles"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
}

// loadCompose decodes docker-compose.yml strictly.
func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	decodeStrict(t, filepath.Join(repoRoot, "docker-compose.yml"), &c)
	if len(c.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	return c
}

// nodes returns the names of the services that run a Sluice node, sorted.
func (c composeFile) nodes() []string {
	var names []string
	for name, s := range c.Services {
		if slices.Equal(s.Command, []string{"sluice", "run"}) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// mounts returns the bind mounts of s as container path -> host path.
func (s composeService) mounts() map[string]string {
	m := map[string]string{}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 && (strings.HasPrefix(parts[0], ".") || strings.HasPrefix(parts[0], "/")) {
			m[parts[1]] = parts[0]
		}
	}
	return m
}

// duplicatePorts returns the published host ports used more than once.
// Ports are "[ip:]host:container"; a bare container port publishes nothing.
func duplicatePorts(services map[string]composeService) []string {
	seen := map[string]string{}
	var dups []string
	names := make([]string, 0, len(services))
	for name := range services {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, p := range services[name].Ports {
			parts := strings.Split(strings.SplitN(p, "/", 2)[0], ":")
			if len(parts) < 2 {
				continue
			}
			host := parts[len(parts)-2]
			if other, ok := seen[host]; ok {
				dups = append(dups, fmt.Sprintf("%s (%s and %s)", host, other, name))
			}
			seen[host] = name
		}
	}
	return dups
}

func TestDuplicatePorts(t *testing.T) {
	tests := []struct {
		name     string
		services map[string]composeService
		want     int
	}{
		{"unique", map[string]composeService{"a": {Ports: []string{"8000:8000"}}, "b": {Ports: []string{"127.0.0.1:8001:8000"}}}, 0},
		{"clash across ips", map[string]composeService{"a": {Ports: []string{"8000:8000"}}, "b": {Ports: []string{"127.0.0.1:8000:80"}}}, 1},
		{"container only", map[string]composeService{"a": {Ports: []string{"8000"}}, "b": {Ports: []string{"8000"}}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := duplicatePorts(tt.services); len(got) != tt.want {
				t.Errorf("duplicatePorts = %v, want %d duplicates", got, tt.want)
			}
		})
	}
}

func TestComposeFilesExist(t *testing.T) {
	c := loadCompose(t)
	for name, s := range c.Services {
		for _, host := range s.mounts() {
			if _, err := os.Stat(filepath.Join(repoRoot, host)); err != nil {
				t.Errorf("service %s mounts %s: %v", name, host, err)
			}
		}
		if s.Build != nil {
			if _, err := os.Stat(filepath.Join(repoRoot, s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("service %s builds from %v: %v", name, *s.Build, err)
			}
		}
		if s.Image == "" {
			t.Errorf("service %s has no image", name)
		}
	}
}

func TestComposePortsAndDependencies(t *testing.T) {
	c := loadCompose(t)
	if dups := duplicatePorts(c.Services); len(dups) > 0 {
		t.Errorf("host ports published twice: %v", dups)
	}
	for name, s := range c.Services {
		for dep := range s.DependsOn {
			d, ok := c.Services[dep]
			if !ok {
				t.Errorf("service %s depends on missing service %s", name, dep)
				continue
			}
			if len(d.Profiles) > 0 && len(s.Profiles) == 0 {
				t.Errorf("service %s always starts but depends on %s, which only the %v profiles start", name, dep, d.Profiles)
			}
		}
		for vol := range s.Volumes {
			src := strings.Split(s.Volumes[vol], ":")[0]
			if !strings.HasPrefix(src, ".") && !strings.HasPrefix(src, "/") {
				if _, ok := c.Volumes[src]; !ok {
					t.Errorf("service %s uses undeclared volume %s", name, src)
				}
			}
		}
	}
	for _, want := range []string{"lb", "postgres", "cassandra", "redis", "prometheus", "grafana", "jaeger", "echo"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("no %s service", want)
		}
	}
	if !slices.Contains(c.Services["cassandra"].Profiles, "cassandra") {
		t.Error("cassandra is not under the cassandra profile")
	}
}

// listenPort returns the port of a node's SLUICE_<KEY> listen address.
func listenPort(t *testing.T, s composeService, key string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(s.Environment[key])
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return port
}

func TestComposeNodes(t *testing.T) {
	c := loadCompose(t)
	nodes := c.nodes()
	if len(nodes) != 3 {
		t.Fatalf("nodes = %v, want three services running `sluice run`", nodes)
	}
	var wantTargets, wantUpstreams []string
	for _, n := range nodes {
		s := c.Services[n]
		wantTargets = append(wantTargets, n+":"+listenPort(t, s, "SLUICE_STATUS_LISTEN"))
		wantUpstreams = append(wantUpstreams, n+":"+listenPort(t, s, "SLUICE_PROXY_LISTEN"))
		if s.Environment["SLUICE_NODE_ID"] != n {
			t.Errorf("%s: SLUICE_NODE_ID = %q", n, s.Environment["SLUICE_NODE_ID"])
		}
		if ep := s.Environment["OTEL_EXPORTER_OTLP_ENDPOINT"]; ep != "http://jaeger:4318" {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT = %q", n, ep)
		}
	}

	var prom prometheusFile
	decodeStrict(t, "prometheus.yml", &prom)
	var targets []string
	for _, sc := range prom.ScrapeConfigs[0].StaticConfigs {
		targets = append(targets, sc.Targets...)
	}
	sort.Strings(targets)
	if !slices.Equal(targets, wantTargets) {
		t.Errorf("prometheus.yml scrapes %v, want the nodes' status listeners %v", targets, wantTargets)
	}

	conf, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var upstreams []string
	for _, m := range regexp.MustCompile(`(?m)^\s*server\s+([\w.-]+:\d+)`).FindAllStringSubmatch(string(conf), -1) {
		upstreams = append(upstreams, m[1])
	}
	sort.Strings(upstreams)
	if !slices.Equal(upstreams, wantUpstreams) {
		t.Errorf("nginx balances over %v, want the nodes' proxies %v", upstreams, wantUpstreams)
	}
}

// TestComposeEnvKeys checks that every SLUICE_<KEY> is a configuration key,
// since a node refuses to start on an unknown one.
func TestComposeEnvKeys(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot, "gateway", "config", "config.go"))
	if err != nil {
		testenv.Missing(t, "gateway/config/config.go", err.Error())
	}
	c := loadCompose(t)
	for name, s := range c.Services {
		for env := range s.Environment {
			key, ok := strings.CutPrefix(env, "SLUICE_")
			if !ok {
				continue
			}
			if !strings.Contains(string(src), `conf:"`+strings.ToLower(key)+`"`) {
				t.Errorf("service %s sets %s, but %q is not a configuration key", name, env, strings.ToLower(key))
			}
		}
	}
}

func TestComposeMonitoringMounts(t *testing.T) {
	c := loadCompose(t)
	tests := []struct {
		service, container, host string
	}{
		{"prometheus", "/etc/prometheus/prometheus.yml", "./dashboards/prometheus.yml"},
		{"prometheus", "/etc/prometheus/alerts.yml", "./dashboards/alerts.yml"},
		{"grafana", "/etc/grafana/provisioning", "./dashboards/provisioning"},
		{"grafana", grafanaDashboardsPath, "./dashboards/grafana"},
		{"lb", "/etc/nginx/nginx.conf", "./deploy/nginx.conf"},
	}
	for _, tt := range tests {
		t.Run(tt.service+tt.container, func(t *testing.T) {
			if got := c.Services[tt.service].mounts()[tt.container]; got != tt.host {
				t.Errorf("%s mounts %q at %s, want %q", tt.service, got, tt.container, tt.host)
			}
		})
	}
}

func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"FROM golang:1.26 AS build", "FROM debian:bookworm-slim", "/usr/local/bin/sluice", "./cmd/sluice", `CMD ["sluice", "run"]`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}
