package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/uuid"

	"github.com/sluice-gw/sluice/gateway/admin"
	"github.com/sluice-gw/sluice/gateway/cluster"
	"github.com/sluice-gw/sluice/gateway/entity"
	"github.com/sluice-gw/sluice/gateway/node"
	"github.com/sluice-gw/sluice/gateway/store"
)

// configCmd runs "sluice config parse|db_import|db_export [-c FILE] PATH",
// Kong's "kong config" on declarative files: parse checks PATH and lists
// every problem, db_import writes its entities in one transaction with
// their cluster events (running nodes apply them as any change), db_export
// writes the datastore's entities to PATH ("-" for standard output).
func configCmd(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return errors.New("config: want parse, db_import or db_export")
	}
	sub := args[0]
	cfg, fs, err := loadConfig("config "+sub, args[1:])
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("config %s: want one file path (after -c, if any)", sub)
	}
	path := fs.Arg(0)
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	opts := admin.Options{Store: st, Plugins: node.PluginRegistry(st)}
	if sub == "db_import" {
		c, err := cluster.New(st, nopApplier{}, cluster.Options{NodeID: "config-" + uuid.NewString(),
			Propagation: cfg.DBUpdatePropagation})
		if err != nil {
			return err
		}
		opts.Cluster = c
	}
	d := admin.NewDeclarative(opts)
	switch sub {
	case "parse", "db_import":
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("config %s: %w", sub, err)
		}
		ents, err := d.Parse(data)
		if err != nil {
			return err
		}
		if sub == "parse" {
			fmt.Fprintf(out, "parse successful: %s\n", summary(ents))
			return nil
		}
		if err := d.Import(ctx, ents); err != nil {
			return err
		}
		fmt.Fprintf(out, "import successful: %s\n", summary(ents))
	case "db_export":
		data, err := d.Export(ctx)
		if err != nil {
			return err
		}
		if path == "-" {
			_, err = out.Write(data)
			return err
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return fmt.Errorf("config db_export: %w", err)
		}
		fmt.Fprintf(out, "exported to %s\n", path)
	default:
		return fmt.Errorf("config: unknown subcommand %q: want parse, db_import or db_export", sub)
	}
	return nil
}

// loadDeclarative loads a DB-less node's declarative_config into st.
func loadDeclarative(ctx context.Context, st store.Store, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("declarative_config: %w", err)
	}
	d := admin.NewDeclarative(admin.Options{Store: st, Plugins: node.PluginRegistry(st)})
	ents, err := d.Parse(data)
	if err != nil {
		return fmt.Errorf("declarative_config=%s: %w", path, err)
	}
	return d.Import(ctx, ents)
}

// summary counts ents by kind: "1 services, 2 routes, ...".
func summary(ents []entity.Entity) string {
	n := map[entity.Kind]int{}
	for _, e := range ents {
		n[e.EntityKind()]++
	}
	parts := make([]string, 0, len(entity.Kinds))
	for _, k := range entity.Kinds {
		parts = append(parts, fmt.Sprintf("%d %s", n[k], k))
	}
	return strings.Join(parts, ", ")
}

// nopApplier is the Applier of a cluster that only emits events.
type nopApplier struct{}

func (nopApplier) Invalidate(context.Context, []entity.CacheKey) {}
func (nopApplier) InvalidateAll(context.Context)                 {}
