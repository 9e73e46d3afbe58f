package web

// orderRoutes registers the orders list and each order's page with its path and evidence.
func (c *Cabinet) orderRoutes() {
}
