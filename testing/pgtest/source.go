package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables that steer where the databases come from.
const (
	// EnvDatabaseURL names the variable holding the connection string of the
	// PostgreSQL server to use, as a URL or in keyword/value form. Its user
	// needs the CREATEDB privilege; the database it names is only used to run
	// CREATE DATABASE and DROP DATABASE from.
	EnvDatabaseURL = "LINTEL_TEST_DATABASE_URL"
	// EnvTimescaleURL names the variable holding the connection string of a
	// server with the timescaledb extension, for [WithTimescale].
	EnvTimescaleURL = "LINTEL_TEST_TIMESCALE_URL"
	// EnvRequireDB names the variable that, set to "1" or "true", turns the
	// skip of a test that finds no PostgreSQL into a failure, as CI wants.
	// It does not apply to [WithTimescale]; see [EnvRequireTimescale].
	EnvRequireDB = "LINTEL_REQUIRE_DB"
	// EnvRequireTimescale names the variable that, set to "1" or "true",
	// turns the skip of a [WithTimescale] test that finds no TimescaleDB
	// into a failure, as CI wants once it has installed TimescaleDB.
	EnvRequireTimescale = "LINTEL_REQUIRE_TIMESCALE"
	// EnvNoDocker names the variable that, when set to "1" or "true", stops
	// pgtest from looking for Docker.
	EnvNoDocker = "LINTEL_TEST_NO_DOCKER"
	// EnvTimescaleImage names the variable that overrides
	// [DefaultTimescaleImage].
	EnvTimescaleImage = "LINTEL_TEST_TIMESCALE_IMAGE"
)

// DefaultURL is the server tried last: PostgreSQL on the loopback interface,
// user postgres, database test, no password (trust authentication).
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable&connect_timeout=2"

// DefaultTimescaleImage is the container image started when Docker is
// available and no server is configured. Its timescaledb.license is
// 'timescale', so compression, policies and continuous aggregates work.
const DefaultTimescaleImage = "timescale/timescaledb:latest-pg17"

// probeTimeout bounds the first connection to a candidate server.
const probeTimeout = 5 * time.Second

// server is a PostgreSQL server found for this process.
type server struct {
	adminDSN  string // connection string of a database to run CREATE/DROP DATABASE from
	source    string // where it came from, for messages
	timescale bool   // the timescaledb extension can be created there
	// flavor names what a migration that detects its flavor finds there:
	// "pg" without TimescaleDB, "ts" with it under timescaledb.license
	// 'timescale', "tsa" under 'apache'. It is part of template names, so
	// that a template built before the server gained TimescaleDB, or under
	// the other license, is never cloned for a test on the server as it is.
	flavor string
}

// servers caches, once per process, where the plain and the TimescaleDB
// servers are. Finding a server costs a connection attempt, a Docker probe
// or a container start, so every test of the binary shares the answer.
// This is the package's only process-wide state, and it exists because the
// process is the unit a test server and its template databases live for.
var servers struct {
	plainOnce, tsOnce sync.Once
	plain, ts         *server
	plainErr, tsErr   error

	containerOnce sync.Once
	container     *server
	containerErr  error
}

// plainServer finds the server for ordinary tests: EnvDatabaseURL, else a
// TimescaleDB container when Docker is available, else DefaultURL.
func plainServer(ctx context.Context) (*server, error) {
	servers.plainOnce.Do(func() {
		servers.plain, servers.plainErr = findPlain(ctx)
	})
	return servers.plain, servers.plainErr
}

// timescaleServer finds a server with TimescaleDB: EnvTimescaleURL, else a
// container when Docker is available, else the plain server if it happens
// to have the extension.
func timescaleServer(ctx context.Context) (*server, error) {
	servers.tsOnce.Do(func() {
		servers.ts, servers.tsErr = findTimescale(ctx)
	})
	return servers.ts, servers.tsErr
}

func findPlain(ctx context.Context) (*server, error) {
	if dsn := os.Getenv(EnvDatabaseURL); dsn != "" {
		s, err := probe(ctx, dsn, EnvDatabaseURL)
		if err != nil {
			// Configured explicitly: unreachable is an error, not a skip.
			return nil, fmt.Errorf("pgtest: %s is set but unusable: %w", EnvDatabaseURL, err)
		}
		return s, nil
	}
	var containerErr error
	if dockerWanted() {
		s, err := containerServer(ctx)
		if err == nil {
			return s, nil
		}
		containerErr = err
	}
	s, err := probe(ctx, DefaultURL, "PostgreSQL on 127.0.0.1:5432")
	if err != nil {
		msg := fmt.Sprintf("set %s, start Docker, or run PostgreSQL on 127.0.0.1:5432 (user postgres, database test): %v", EnvDatabaseURL, err)
		if containerErr != nil {
			msg += "; Docker: " + containerErr.Error()
		}
		return nil, fmt.Errorf("%w: %s", ErrNoDatabase, msg)
	}
	return s, nil
}

func findTimescale(ctx context.Context) (*server, error) {
	if dsn := os.Getenv(EnvTimescaleURL); dsn != "" {
		s, err := probe(ctx, dsn, EnvTimescaleURL)
		if err != nil {
			return nil, fmt.Errorf("pgtest: %s is set but unusable: %w", EnvTimescaleURL, err)
		}
		if !s.timescale {
			return nil, fmt.Errorf("pgtest: %s is set but the timescaledb extension is not available there (installed and in shared_preload_libraries)", EnvTimescaleURL)
		}
		return s, nil
	}
	var reasons []error
	if dockerWanted() {
		s, err := containerServer(ctx)
		if err == nil {
			return s, nil
		}
		reasons = append(reasons, fmt.Errorf("Docker: %w", err))
	} else {
		reasons = append(reasons, errors.New("no Docker"))
	}
	s, err := plainServer(ctx)
	switch {
	case err != nil:
		reasons = append(reasons, err)
	case s.timescale:
		return s, nil
	default:
		reasons = append(reasons, fmt.Errorf("%s has no timescaledb extension", s.source))
	}
	return nil, fmt.Errorf("%w: set %s or start Docker (%w)", ErrNoTimescale, EnvTimescaleURL, errors.Join(reasons...))
}

// probe connects to dsn once and learns whether TimescaleDB can be used there.
func probe(ctx context.Context, dsn, source string) (*server, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var ts bool
	var license *string
	err = conn.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
		   AND current_setting('shared_preload_libraries') LIKE '%timescaledb%',
		       current_setting('timescaledb.license', true)`).Scan(&ts, &license)
	if err != nil {
		return nil, err
	}
	return &server{adminDSN: dsn, source: source, timescale: ts, flavor: serverFlavor(ts, license)}, nil
}

// serverFlavor returns the server's flavor for template names (see server.flavor).
func serverFlavor(timescale bool, license *string) string {
	switch {
	case !timescale:
		return "pg"
	case license != nil && *license == "apache":
		return "tsa"
	}
	return "ts"
}

// truthy reports whether an environment variable is set to a true value.
func truthy(name string) bool {
	switch os.Getenv(name) {
	case "1", "true", "TRUE", "True", "yes", "on":
		return true
	}
	return false
}
