// Package buildinfo says which build of Throughline is running.
package buildinfo

import (
	"runtime/debug"
	"sync"
)

// version is set at link time: -ldflags "-X github.com/throughline/throughline/internal/buildinfo.version=v1.2.3".
var version string

// Version returns the link-time version, else the module version, else the
// VCS revision Go stamped into the binary, else "dev".
var Version = sync.OnceValue(func() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		return "dev"
	}
	return "dev-" + rev + dirty
})
