// Package pgtest gives each test a fresh PostgreSQL database of its own, the
// way net/http/httptest gives it an HTTP server: one line to use, dropped in
// cleanup, nothing mocked.
//
//	pool := pgtest.New(t, pgtest.WithTemplate(pgtest.Template{
//		Name:    "storage",
//		Hash:    storage.SchemaHash(),
//		Migrate: migrate,
//	}))
//
// # Templates
//
// Migrating a schema takes far longer than copying one, so [WithTemplate]
// migrates a template database once and every test gets a clone of it
// (CREATE DATABASE … TEMPLATE …), which takes milliseconds. The migration is
// the caller's function, so pgtest depends on no schema. The template is
// named after [Template.Name], the server's flavor ("pg" without
// TimescaleDB, "ts" or "tsa" with it under its 'timescale' or 'apache'
// license, since a migration may choose its schema by what the server has)
// and [Template.Hash], and is kept between runs; when the hash changes, a
// new template is built and the stale one dropped. Building happens once
// per process and template, under an advisory lock in the server's
// "postgres" database (advisory locks hold per database, so connection
// strings naming different databases of one server still share it), so
// test binaries that run at the same time (go test runs packages in
// parallel) build it once between them. A template is
// marked IS_TEMPLATE only after its migration succeeded, so one left half
// built by a killed process is recognised and rebuilt.
//
// Test databases are named lintel_test_{unix time}_{random}. Each is dropped
// WITH (FORCE) when its test ends; ones leaked by a killed process are
// dropped by a later run once they are three hours old.
//
// # Where the server comes from
//
// In this order: the connection string in LINTEL_TEST_DATABASE_URL
// ([EnvDatabaseURL]); else, when a Docker daemon answers and the test
// binary imports github.com/lintel-io/lintel/testing/pgtest/pgdocker, a
// TimescaleDB container ([DefaultTimescaleImage], started once per process
// through testcontainers, whose reaper removes it when the process ends;
// see [UseContainers]); else PostgreSQL on 127.0.0.1:5432, user postgres,
// database test ([DefaultURL]). pgdocker is a module of its own, so that
// testcontainers and its dependencies stay out of the go.sum of a module
// that does not import it.
// Finding no Docker costs a stat of its socket, or at most half a second of
// ping when a socket exists but no daemon answers; it never hangs.
//
// When there is no server at all, the test is skipped with a message saying
// what was tried; with LINTEL_REQUIRE_DB=1 ([EnvRequireDB]) it fails
// instead, as in CI. A server configured through a variable but unreachable
// always fails.
//
// [WithTimescale] asks for a server with the timescaledb extension:
// LINTEL_TEST_TIMESCALE_URL ([EnvTimescaleURL]), else the container, else the
// ordinary server if it has the extension. Without one the test is skipped,
// whatever LINTEL_REQUIRE_DB says (that variable is about plain
// PostgreSQL), unless LINTEL_REQUIRE_TIMESCALE=1 ([EnvRequireTimescale])
// makes it a failure.
//
// The server is shared: tests never stop or reconfigure it, and each pool
// is small ([DefaultMaxConns]) so that parallel tests stay within
// max_connections.
//
// # A server of the test's own
//
// A test that must stop, restart or crash PostgreSQL (to prove what an
// application does when its database goes away) starts a server of its
// own with [StartServer]: the machine's PostgreSQL binaries, a data
// directory in the test's temporary directory, a port of its own, and
// [Server.Restart], [Server.CrashRestart], [Server.Stop] and [Server.Start].
package pgtest
