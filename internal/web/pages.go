package web

// counterRoutes are the pages of one counter's data.
func (c *Cabinet) counterRoutes() {
	c.route("GET /c/{id}/{$}", Viewer, c.dashboardPage)
}
