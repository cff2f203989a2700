//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the name of the lock file in the data directory.
const LockFile = "lifeline.lock"

// ErrLocked is returned, wrapped, by Lock when another process holds the
// data directory.
var ErrLocked = errors.New("data directory in use")

// Lock makes this process the one writer of the record under dir: it
// takes an exclusive advisory lock (flock) on dir/LockFile and writes its
// pid there. A second server on the same directory gets ErrLocked at
// once, naming the holder's pid. The lock is released by unlock, and by
// the kernel when the process dies (a SIGKILLed server leaves no stale
// lock behind). Operator commands (backup, audit verify, reset-password)
// do not take it: they run beside the server, and SQLite serialises
// their writes.
func Lock(dir string) (unlock func() error, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("sqlite: data directory: %w", err)
	}
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("sqlite: lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(holder))
			if pid == "" {
				pid = "unknown"
			}
			return nil, fmt.Errorf("%w: --data-dir %s is held by another lifelined (pid %s); the record has one writer: stop that one or give this one another --data-dir", ErrLocked, dir, pid)
		}
		return nil, fmt.Errorf("sqlite: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() error {
		_ = f.Truncate(0)
		return f.Close() // closing the descriptor releases the flock
	}, nil
}
