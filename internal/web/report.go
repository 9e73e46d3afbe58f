package web

// reportRoutes registers the end-to-end report, its exports and the model comparison.
func (c *Cabinet) reportRoutes() {
}
