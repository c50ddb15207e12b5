package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-gw/sluice/gateway/store"
)

// wrap prefixes err with "postgres: cannot <what>: " and adds
// store.ErrUnavailable when err means the server could not be reached or the
// connection broke. Errors that are already the contract's (ErrNotFound,
// *UniqueError, ...) keep their identity through %w.
func (s *Store) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if hint := s.configHint(err); hint != "" {
		return fmt.Errorf("postgres: cannot %s: %w: %w (check %s)", what, store.ErrUnavailable, err, hint)
	}
	if unavailable(err) {
		return fmt.Errorf("postgres: cannot %s: %w: %w", what, store.ErrUnavailable, err)
	}
	return fmt.Errorf("postgres: cannot %s: %w", what, err)
}

// configHint names the configuration keys to check when err is a
// connection-time failure caused by them, or returns "".
func (s *Store) configHint(err error) string {
	c := s.cfg
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "28P01", "28000": // invalid_password, invalid_authorization_specification
			return fmt.Sprintf("pg_user=%q and pg_password", c.User)
		case "3D000": // invalid_catalog_name
			return fmt.Sprintf("pg_database=%q", c.Database)
		}
		return ""
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		if strings.Contains(err.Error(), "TLS") || strings.Contains(err.Error(), "SSL") {
			return fmt.Sprintf("pg_ssl=%t", c.SSL)
		}
		return fmt.Sprintf("pg_host=%q and pg_port=%d", c.Host, c.Port)
	}
	return ""
}

// unavailable reports whether err means the server is unreachable or the
// connection broke, as opposed to a rejected statement.
func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08 is connection_exception; 57P01-57P03 are admin_shutdown,
		// crash_shutdown and cannot_connect_now.
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" ||
			pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, context.DeadlineExceeded) ||
		pgconn.Timeout(err) || strings.Contains(err.Error(), "conn closed")
}
