// Command throughline is Throughline's single binary; see `throughline help`.
package main

import (
	"os"
	_ "time/tzdata" // counters' time zones work on machines without a zoneinfo database

	"github.com/throughline/throughline/internal/cli"
)

func main() { os.Exit(cli.Run()) }
