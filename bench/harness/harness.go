// Package harness starts a local cluster of real sluice node processes on
// loopback ports, for the end-to-end tests and for `sluice bench`. Every
// node runs the same binary with the same datastore settings; the harness
// waits until each one answers /status/ready and stops them all on Stop.
package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configures a Cluster.
type Options struct {
	// Binary is the sluice binary. Empty means Build it into Dir.
	Binary string
	// Nodes is the number of node processes. 0 means 2.
	Nodes int
	// Dir holds the SQLite file (when the datastore is SQLite) and the
	// nodes' logs. Required.
	Dir string
	// Env holds SLUICE_<KEY>=value settings given to every node (the
	// listen addresses are chosen by the harness). With no SLUICE_DATABASE,
	// nodes share an SQLite file in Dir.
	Env []string
	// NodeEnv, when set, holds per node (NodeEnv[i] for node i+1) settings
	// added after Env, e.g. one node's datastore address.
	NodeEnv [][]string
	// Log, when set, receives every node's output, each line prefixed with
	// the node's name. Otherwise output goes to Dir/node-N.log only.
	Log io.Writer
	// ReadyTimeout bounds the wait for each node. 0 means 60s.
	ReadyTimeout time.Duration
	// Args are extra arguments after "run" (e.g. "-c", "sluice.conf").
	Args []string
	// CPUs, when set, holds per node (CPUs[i] for node i+1) the CPU list it
	// runs on, in taskset(1)'s -c syntax ("1", "0-2"); "" leaves a node
	// unpinned. The node's Go runtime then sizes GOMAXPROCS to its list.
	// Needs taskset (util-linux).
	CPUs []string
}

// Cluster is a set of running node processes.
type Cluster struct {
	Nodes []*Node
	opts  Options
}

// Node is one node process.
type Node struct {
	Name string
	// ProxyURL, AdminURL and StatusURL are "http://127.0.0.1:<port>".
	ProxyURL, AdminURL, StatusURL string

	env   []string
	opts  *Options
	index int // 0 for node-1
	// mu guards cmd and done.
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Build compiles ./cmd/sluice of the module containing the working
// directory into dir and returns the binary's path.
func Build(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "sluice")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/sluice")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("harness: cannot build sluice: %w\n%s", err, out)
	}
	return bin, nil
}

// Start starts the nodes and waits until every one is ready. On error, the
// nodes already started are stopped.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Dir == "" {
		return nil, errors.New("harness: Options.Dir is required")
	}
	if opts.Nodes == 0 {
		opts.Nodes = 2
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 60 * time.Second
	}
	if len(opts.CPUs) > 0 {
		if _, err := exec.LookPath("taskset"); err != nil {
			return nil, fmt.Errorf("harness: Options.CPUs needs taskset (util-linux): %w", err)
		}
	}
	if opts.Binary == "" {
		bin, err := Build(ctx, opts.Dir)
		if err != nil {
			return nil, err
		}
		opts.Binary = bin
	}
	c := &Cluster{opts: opts}
	for i := range opts.Nodes {
		n, err := c.newNode(i + 1)
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
		if err := n.Start(ctx); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

func (c *Cluster) newNode(i int) (*Node, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	n := &Node{
		Name:      fmt.Sprintf("node-%d", i),
		ProxyURL:  "http://" + ports[0],
		AdminURL:  "http://" + ports[1],
		StatusURL: "http://" + ports[2],
		opts:      &c.opts,
		index:     i - 1,
	}
	n.env = append(os.Environ(),
		"SLUICE_PROXY_LISTEN="+ports[0], "SLUICE_ADMIN_LISTEN="+ports[1], "SLUICE_STATUS_LISTEN="+ports[2],
		"SLUICE_SQLITE_PATH="+filepath.Join(c.opts.Dir, "sluice.db"),
		"SLUICE_NODE_ID="+fmt.Sprintf("00000000-0000-4000-8000-%012d", i))
	n.env = append(n.env, c.opts.Env...)
	if i-1 < len(c.opts.NodeEnv) {
		n.env = append(n.env, c.opts.NodeEnv[i-1]...)
	}
	return n, nil
}

// Stop stops every node (SIGTERM, then SIGKILL after 10 s).
func (c *Cluster) Stop() {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.Stop() }()
	}
	wg.Wait()
}

// Start starts the node's process (again, after Stop or Kill) and waits
// until it is ready.
func (n *Node) Start(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(n.opts.Dir, n.Name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("harness: %w", err)
	}
	var out io.Writer = logf
	if n.opts.Log != nil {
		out = io.MultiWriter(logf, &prefixWriter{prefix: n.Name + " | ", w: n.opts.Log})
	}
	cmd := Command(n.cpus(), n.opts.Binary, append([]string{"run"}, n.opts.Args...)...)
	cmd.Env = n.env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("harness: cannot start %s: %w", n.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(done) }()
	n.mu.Lock()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	return n.waitReady(ctx, done)
}

func (n *Node) waitReady(ctx context.Context, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, n.opts.ReadyTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(n.StatusURL + "/status/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("harness: %s exited before it was ready; see %s", n.Name, filepath.Join(n.opts.Dir, n.Name+".log"))
		case <-ctx.Done():
			return fmt.Errorf("harness: %s not ready: %w; see %s", n.Name, ctx.Err(), filepath.Join(n.opts.Dir, n.Name+".log"))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Command returns the command running bin with args on the CPUs listed in
// cpus (taskset(1)'s -c syntax), or unpinned when cpus is "". taskset
// execs bin, so the process id is bin's.
func Command(cpus, bin string, args ...string) *exec.Cmd {
	if cpus == "" {
		return exec.Command(bin, args...)
	}
	return exec.Command("taskset", append([]string{"-c", cpus, bin}, args...)...)
}

// cpus returns the node's CPU list from Options.CPUs, or "".
func (n *Node) cpus() string {
	if n.index < len(n.opts.CPUs) {
		return n.opts.CPUs[n.index]
	}
	return ""
}

// Stop sends SIGTERM and waits for the process, killing it after 10 s.
func (n *Node) Stop() { n.signal(syscall.SIGTERM, 10*time.Second) }

// Kill kills the process at once (kill -9) and waits for it.
func (n *Node) Kill() { n.signal(syscall.SIGKILL, 0) }

// Pid returns the process id, or 0 when the node is not running.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	select {
	case <-n.done:
		return 0
	default:
		return n.cmd.Process.Pid
	}
}

func (n *Node) signal(sig syscall.Signal, grace time.Duration) {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}

// freePorts returns n distinct loopback addresses free at the time of the
// call.
func freePorts(n int) ([]string, error) {
	var addrs []string
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("harness: no free port: %w", err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("harness: go.mod not found above the working directory; set Options.Binary")
		}
		dir = parent
	}
}

// prefixWriter prefixes each line written through it.
type prefixWriter struct {
	prefix string
	w      io.Writer
	mu     sync.Mutex
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := strings.IndexByte(string(p.buf), '\n')
		if i < 0 {
			return len(b), nil
		}
		if _, err := io.WriteString(p.w, p.prefix+string(p.buf[:i+1])); err != nil {
			return len(b), err
		}
		p.buf = p.buf[i+1:]
	}
}
