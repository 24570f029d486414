package recs_test

import (
	"fmt"
	"strings"
)

// fmtSscan reads the number of a recstest title name ("t12").
func fmtSscan(id string, n *int) (int, error) {
	return fmt.Sscan(strings.TrimPrefix(id, "t"), n)
}
