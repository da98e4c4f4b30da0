package storage_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/lintel-io/lintel/storage"
)

// Example migrates a database, then pages through a thing's last day of
// events. It needs a database (LINTEL_DATABASE_URL), so it has no Output
// and only compiles in tests.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("LINTEL_DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	res, err := storage.Migrate(ctx, pool, storage.MigrateOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("schema version", res.Version, "flavor", res.Flavor)

	s := storage.New(pool, storage.Config{})
	q := storage.EventQuery{Org: "acme", Edge: "hq", ThingType: "reader", ThingCode: "r1",
		From: time.Now().Add(-24 * time.Hour), Limit: 500}
	for {
		page, err := s.Events(ctx, q)
		if err != nil {
			log.Fatal(err)
		}
		for _, e := range page.Events {
			fmt.Println(e.Time, e.Name, string(e.Payload))
		}
		if page.Next == "" {
			break
		}
		q.Cursor = page.Next
	}
}
