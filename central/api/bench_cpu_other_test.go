//go:build !unix

package api_test

import "time"

// processCPU returns false: the process's CPU time is not known here.
func processCPU() (time.Duration, bool) { return 0, false }
