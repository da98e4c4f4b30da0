package api

// SetScanBudget sets how many messages of central's event stream one
// history page reads without a database, for a test; restore puts the
// default back.
func SetScanBudget(n int) (restore func()) {
	prev := scanBudget
	scanBudget = n
	return func() { scanBudget = prev }
}
