package matching

// SetMaxSQLiteKeys lowers the keys byKeys binds one by one, so tests reach
// the JSON-array path with a few keys; it returns the old value.
func SetMaxSQLiteKeys(n int) int {
	old := maxSQLiteKeys
	maxSQLiteKeys = n
	return old
}
