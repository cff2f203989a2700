//go:build !unix

package main

import "errors"

// fileLimit is not known on this system.
func fileLimit() (soft, hard uint64, err error) {
	return 0, 0, errors.New("no descriptor limit on this system")
}
