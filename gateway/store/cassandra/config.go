package cassandra

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Config configures the Cassandra datastore. Field names follow Kong's
// configuration keys; the zero value of every field means its default.
type Config struct {
	// ContactPoints (cassandra_contact_points) are the hosts the driver
	// first connects to. Default: 127.0.0.1. A point may carry its own port
	// ("host:port").
	ContactPoints []string
	// Port (cassandra_port) is the CQL native port. Default: 9042.
	Port int
	// Keyspace (cassandra_keyspace) holds every table. Default: sluice.
	Keyspace string
	// Username and Password (cassandra_username, cassandra_password) enable
	// PasswordAuthenticator when Username is set.
	Username string
	Password string
	// ReadConsistency (cassandra_read_consistency) is used by reads.
	// Default: ONE.
	ReadConsistency string
	// WriteConsistency (cassandra_write_consistency) is used by writes.
	// Default: ONE.
	WriteConsistency string
	// ReplStrategy (cassandra_repl_strategy) is SimpleStrategy (default)
	// or NetworkTopologyStrategy; migrations create the keyspace with it.
	ReplStrategy string
	// ReplFactor (cassandra_repl_factor) is SimpleStrategy's replication
	// factor. Default: 1.
	ReplFactor int
	// DataCenters (cassandra_data_centers) lists NetworkTopologyStrategy's
	// replication factor per data center, as "dc1:2,dc2:3".
	DataCenters string
	// Timeout (cassandra_timeout) bounds connecting and each query.
	// Default: 5s.
	Timeout time.Duration
	// EventTTL (cluster_events_ttl) is how long cluster events live before
	// Cassandra expires them. Default: 24h.
	EventTTL time.Duration
}

// settings is a validated Config.
type settings struct {
	Config
	read, write gocql.Consistency
	replication string // the CQL replication map
}

var (
	keyspaceRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_]{0,47}$`)
	dcRE       = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)
	// consistencies lists the levels a read or write may use.
	consistencies = []string{"ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE"}
)

// validate applies defaults and checks every value.
func (c Config) validate() (settings, error) {
	if len(c.ContactPoints) == 0 {
		c.ContactPoints = []string{"127.0.0.1"}
	}
	for _, p := range c.ContactPoints {
		if strings.TrimSpace(p) == "" {
			return settings{}, fmt.Errorf("cassandra_contact_points: empty host in %q", c.ContactPoints)
		}
	}
	if c.Port == 0 {
		c.Port = 9042
	}
	if c.Port < 1 || c.Port > 65535 {
		return settings{}, fmt.Errorf("cassandra_port=%d: want 1 to 65535", c.Port)
	}
	if c.Keyspace == "" {
		c.Keyspace = "sluice"
	}
	if !keyspaceRE.MatchString(c.Keyspace) {
		return settings{}, fmt.Errorf("cassandra_keyspace=%q: want a letter then up to 47 letters, digits or underscores", c.Keyspace)
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Timeout < 0 {
		return settings{}, fmt.Errorf("cassandra_timeout=%v: want a positive duration", c.Timeout)
	}
	if c.EventTTL == 0 {
		c.EventTTL = 24 * time.Hour
	}
	if c.EventTTL < time.Second {
		return settings{}, fmt.Errorf("cluster_events_ttl=%v: want at least 1s", c.EventTTL)
	}
	s := settings{Config: c}
	var err error
	if s.read, err = consistency("cassandra_read_consistency", c.ReadConsistency); err != nil {
		return settings{}, err
	}
	if s.write, err = consistency("cassandra_write_consistency", c.WriteConsistency); err != nil {
		return settings{}, err
	}
	if s.replication, err = c.replicationMap(); err != nil {
		return settings{}, err
	}
	return s, nil
}

func consistency(key, v string) (gocql.Consistency, error) {
	if v == "" {
		return gocql.One, nil
	}
	for _, name := range consistencies {
		if strings.EqualFold(v, name) {
			return gocql.ParseConsistency(name), nil
		}
	}
	return 0, fmt.Errorf("%s=%q: want one of %s", key, v, strings.Join(consistencies, ", "))
}

// replicationMap returns the CQL replication map of the keyspace.
func (c Config) replicationMap() (string, error) {
	switch c.ReplStrategy {
	case "", "SimpleStrategy":
		if c.ReplFactor == 0 {
			c.ReplFactor = 1
		}
		if c.ReplFactor < 1 {
			return "", fmt.Errorf("cassandra_repl_factor=%d: want 1 or more", c.ReplFactor)
		}
		return fmt.Sprintf("{'class': 'SimpleStrategy', 'replication_factor': %d}", c.ReplFactor), nil
	case "NetworkTopologyStrategy":
		dcs, err := parseDataCenters(c.DataCenters)
		if err != nil {
			return "", err
		}
		return "{'class': 'NetworkTopologyStrategy', " + dcs + "}", nil
	default:
		return "", fmt.Errorf("cassandra_repl_strategy=%q: want SimpleStrategy or NetworkTopologyStrategy", c.ReplStrategy)
	}
}

// parseDataCenters turns "dc1:2,dc2:3" into "'dc1': 2, 'dc2': 3".
func parseDataCenters(v string) (string, error) {
	const want = `want "name:factor" pairs separated by commas, e.g. "dc1:2,dc2:3"`
	if strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("cassandra_data_centers is empty: NetworkTopologyStrategy needs it; %s", want)
	}
	var parts []string
	seen := map[string]bool{}
	for _, pair := range strings.Split(v, ",") {
		name, factor, ok := strings.Cut(strings.TrimSpace(pair), ":")
		n, err := strconv.Atoi(factor)
		if !ok || !dcRE.MatchString(name) || err != nil || n < 1 || seen[name] {
			return "", fmt.Errorf("cassandra_data_centers=%q: bad entry %q; %s, factors 1 or more, names unique", v, pair, want)
		}
		seen[name] = true
		parts = append(parts, fmt.Sprintf("'%s': %d", name, n))
	}
	return strings.Join(parts, ", "), nil
}
