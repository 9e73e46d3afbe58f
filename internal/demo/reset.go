package demo

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/throughline/throughline/internal/store"
)

// counterTables are the tables that hold a counter's data: every table with
// a counter_id column. Foreign keys point only at counters (which goes
// last); within the list, tables whose rows refer to another table's rows
// come before it, so the order stays right if such keys are added. A test
// reads the schema and fails when a table with counter_id is missing here.
var counterTables = []string{
	// Derived data: rollups, matches, the queue, webhook deliveries.
	"rollup_rungs", "rollup_orders", "rollup_costs", "rollup_traffic", "rollup_periods", "rollup_dirty",
	"order_keys", "order_touches", "order_matches", "match_queue",
	"webhook_deliveries", "webhooks",
	// RetailCRM two-way integration.
	"retailcrm_deals", "retailcrm_pushes", "retailcrm_integrations",
	// CRM.
	"crm_imports", "import_tasks", "crm_orders", "crm_contacts", "crm_order_statuses", "crm_attributes", "crm_products",
	// Ad costs.
	"ad_costs",
	// Calls and leads.
	"calls", "number_leases", "tracked_numbers", "number_pools", "hook_failures", "call_hooks",
	"form_captures", "leads",
	// Visits.
	"hits", "sessions", "bot_hits",
	// Access.
	"counter_roles", "api_tokens",
}

// Reset deletes a counter and everything it owns, in one transaction. Some
// tables have no foreign key to counters (bulk-loaded ones skip the check
// for speed), so ON DELETE CASCADE alone would leave their rows behind.
func Reset(ctx context.Context, db *store.DB, counterID int64) error {
	return db.Tx(ctx, func(tx *sql.Tx) error {
		for _, t := range counterTables {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+t+` WHERE counter_id = $1`, counterID); err != nil {
				return fmt.Errorf("demo: reset counter %d: %s: %w", counterID, t, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM counters WHERE id = $1`, counterID); err != nil {
			return fmt.Errorf("demo: reset counter %d: %w", counterID, err)
		}
		return nil
	})
}
