package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lintel-io/lintel/storage"
	"github.com/lintel-io/lintel/testing/pgtest"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://postgres@127.0.0.1:5432/lintel_demo?sslmode=disable", "postgres://postgres@127.0.0.1:5432/lintel_demo?sslmode=disable"},
		{"postgres://app:s3cret@db:5432/lintel", "postgres://app:xxxxx@db:5432/lintel"},
		{"postgres://app@db/lintel?password=s3cret&sslmode=require", "postgres://app@db/lintel?password=xxxxx&sslmode=require"},
		{"host=db user=app password=s3cret dbname=lintel", "host=db user=app password=xxxxx dbname=lintel"},
		{"host=db password='s3 cret' dbname=lintel", "host=db password=xxxxx dbname=lintel"},
	} {
		if got := redact(tc.in); got != tc.want {
			t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestDatabase: createDatabase creates the demo's database once, and
// claim lets one demo at a time use it, forgetting the ingest position of
// the run before.
func TestDatabase(t *testing.T) {
	db := pgtest.NewDB(t) // the admin connection: any database of the server
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	var b [5]byte
	_, _ = rand.Read(b[:])
	// Named like pgtest's databases, so that a later pgtest run drops it
	// should this test be killed before its cleanup.
	name := fmt.Sprintf("lintel_test_%d_demo%s", time.Now().Unix(), hex.EncodeToString(b[:]))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		if _, err := db.Pool.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})

	dsn, err := createDatabase(ctx, db.DSN, name, dbTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := createDatabase(ctx, db.DSN, name, dbTimeout); err != nil || again != dsn {
		t.Fatalf("createDatabase again = %q, %v; want %q", again, err, dsn)
	}

	// A first claim on a database not yet migrated.
	first, err := claim(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := claim(ctx, dsn); !errors.Is(err, errDatabaseBusy) {
		t.Errorf("second claim while the first holds: %v, want errDatabaseBusy", err)
	}
	release(first)

	// An earlier run's ingest position is forgotten; another stream's
	// is not.
	h, err := useDatabase(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storage.Migrate(ctx, h.pool, storage.MigrateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.pool.Exec(ctx, `INSERT INTO lintel.ingest_positions (stream, name, seq) VALUES ('events-acme', 'ingest', 412), ('events-other', 'ingest', 7)`); err != nil {
		t.Fatal(err)
	}
	h.close()
	h, err = useDatabase(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	var streams []string
	rows, err := h.pool.Query(ctx, `SELECT stream FROM lintel.ingest_positions ORDER BY stream`)
	if err != nil {
		t.Fatal(err)
	}
	if streams, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(streams) != "[events-other]" {
		t.Errorf("ingest positions after a claim: %v, want only events-other's", streams)
	}
}
