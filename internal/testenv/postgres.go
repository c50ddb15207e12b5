package testenv

import (
	"context"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// PGDSNVar names the variable holding the test PostgreSQL's URL.
const PGDSNVar = "SLUICE_TEST_PG_DSN"

// PG is the test PostgreSQL named by SLUICE_TEST_PG_DSN.
type PG struct {
	DSN                      string
	Host                     string
	Port                     int
	User, Password, Database string
	SSL                      bool
}

// Postgres returns the test PostgreSQL, calling Missing when
// SLUICE_TEST_PG_DSN is unset and failing t when it is malformed.
func Postgres(t testing.TB) PG {
	t.Helper()
	dsn := Var(t, PGDSNVar, `run: bash tools/postgres.sh start && eval "$(bash tools/postgres.sh env)"`)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("%s: %v", PGDSNVar, err)
	}
	pg := PG{DSN: dsn, Host: u.Hostname(), User: u.User.Username(), Database: strings.TrimPrefix(u.Path, "/"),
		SSL: u.Query().Get("sslmode") == "require"}
	pg.Password, _ = u.User.Password()
	if p := u.Port(); p != "" {
		if pg.Port, err = strconv.Atoi(p); err != nil {
			t.Fatalf("%s: port: %v", PGDSNVar, err)
		}
	}
	return pg
}

// FreshSchema returns a new schema name starting with prefix, dropped
// (with everything in it) when t ends.
func (pg PG) FreshSchema(t testing.TB, prefix string) string {
	t.Helper()
	schema := prefix + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, os.Getenv(PGDSNVar))
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}
