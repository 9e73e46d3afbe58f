package web

// counterRoutes are the pages of one counter's data, one function per area
// (each in its own file).
func (c *Cabinet) counterRoutes() {
	c.dashboardRoutes()
	c.reportRoutes()
	c.orderRoutes()
	c.journalRoutes()
}
