package pgtest

import "errors"

// Sentinel errors reported by this package; compare with [errors.Is].
var (
	// ErrNoDatabase reports that no PostgreSQL server could be found: none
	// configured, no Docker, and nothing listening on the default address.
	// [New] skips the test with it, or fails when LINTEL_REQUIRE_DB=1.
	ErrNoDatabase = errors.New("pgtest: no PostgreSQL available")

	// ErrNoTimescale reports that no PostgreSQL server with the timescaledb
	// extension could be found. [New] with [WithTimescale] skips the test
	// with it, whatever LINTEL_REQUIRE_DB says, or fails when
	// LINTEL_REQUIRE_TIMESCALE=1.
	ErrNoTimescale = errors.New("pgtest: no TimescaleDB available")
)
