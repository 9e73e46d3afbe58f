//go:build !unix

package server

// openFileLimit is unknown here: the connection cap is maxConns.
func openFileLimit() (uint64, bool) { return 0, false }
