//go:build unix

package main

import "syscall"

// fileLimit raises the soft limit on open file descriptors to the hard
// one where the system allows (Go does so at start on Linux already; this
// covers the rest) and returns both.
func fileLimit() (soft, hard uint64, err error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, 0, err
	}
	if l.Cur < l.Max {
		raised := l
		raised.Cur = raised.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			l = raised
		}
	}
	return uint64(l.Cur), uint64(l.Max), nil
}
