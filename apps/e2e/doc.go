// Package e2e holds the end-to-end tests of Lintel's binaries: central and
// edge built and run as separate processes on loopback, with a real
// PostgreSQL, a TCP proxy on the link and TLS everywhere.
package e2e
