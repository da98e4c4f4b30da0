// Package pgdocker lets package pgtest start a TimescaleDB container when
// a Docker daemon answers and no PostgreSQL server is configured. Import it
// for its side effect in a test file:
//
//	import _ "github.com/lintel-io/lintel/testing/pgtest/pgdocker"
//
// It is a module of its own, built on testcontainers-go, so that
// testcontainers and its many dependencies stay out of the go.sum of a
// module that uses Lintel without it. The container is labelled
// io.lintel.pgtest=1 and removed by testcontainers' reaper when the test
// process ends, however it ends.
package pgdocker

import (
	"context"
	"fmt"

	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"

	"github.com/lintel-io/lintel/testing/pgtest"
)

func init() { pgtest.UseContainers(Start) }

// Start starts a PostgreSQL container from image (user, password and
// database "postgres") and returns its connection string; it is the
// [pgtest.ContainerStarter] this package registers.
func Start(ctx context.Context, image string) (string, error) {
	ctr, err := tcpostgres.Run(ctx, image,
		tcpostgres.WithDatabase("postgres"),
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword("postgres"),
		tcpostgres.BasicWaitStrategies(),
		testcontainers.WithLabels(map[string]string{"io.lintel.pgtest": "1"}),
	)
	if err != nil {
		if ctr != nil {
			_ = testcontainers.TerminateContainer(ctr)
		}
		return "", err
	}
	dsn, err := ctr.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		_ = testcontainers.TerminateContainer(ctr)
		return "", fmt.Errorf("container %s: %w", image, err)
	}
	return dsn, nil
}
