//go:build !unix

package procstat

import "time"

// Self returns 0: CPU time is only measured on unix.
func Self() time.Duration { return 0 }
