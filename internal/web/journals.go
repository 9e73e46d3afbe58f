package web

// journalRoutes registers the journals of sessions, calls and leads, and their detail pages.
func (c *Cabinet) journalRoutes() {
}
